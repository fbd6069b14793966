import Foundation
import NIOConcurrencyHelpers
import NIOSSL
import SwiftASN1
import X509

/// The process's one TLS server context, made from `TLS_CERT_FILE` and `TLS_KEY_FILE`.
///
/// New connections take the context current when they arrive; ``reload()`` swaps in one
/// made from the files as they are now (on SIGHUP, e.g. after a certificate renewal), so
/// established connections keep theirs and nothing is dropped. Files that cannot be used
/// leave the old pair in place.
final class TLSContextStore: Sendable {
    let settings: TLSSettings
    private let current: NIOLockedValueBox<NIOSSLContext>

    /// - Throws: ``ConfigurationError`` naming the setting whose file is missing,
    ///   unreadable, not PEM, or whose key does not match the certificate.
    init(settings: TLSSettings) throws(ConfigurationError) {
        self.settings = settings
        self.current = NIOLockedValueBox(try Self.makeContext(settings))
    }

    /// The context for a new connection.
    var context: NIOSSLContext { current.withLockedValue { $0 } }

    /// Re-reads both files; on failure the current pair stays and the error says why.
    func reload() throws(ConfigurationError) {
        let context = try Self.makeContext(settings)
        current.withLockedValue { $0 = context }
    }

    static func makeContext(_ settings: TLSSettings) throws(ConfigurationError) -> NIOSSLContext {
        let certificateText = try read(settings.certificateFile, for: .tlsCertFile)
        let keyText = try read(settings.keyFile, for: .tlsKeyFile)
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(Array(certificateText.utf8))
        } catch {
            throw ConfigurationError(.tlsCertFile, "'\(settings.certificateFile)' is not a PEM certificate file")
        }
        guard !chain.isEmpty else {
            throw ConfigurationError(.tlsCertFile, "'\(settings.certificateFile)' holds no PEM certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: Array(keyText.utf8), format: .pem)
        } catch {
            throw ConfigurationError(.tlsKeyFile, "'\(settings.keyFile)' is not a PEM private key")
        }
        try checkKey(keyText, matches: certificateText, settings: settings)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw ConfigurationError(.tlsCertFile, "cannot be used with TLS_KEY_FILE: \(error)")
        }
    }

    /// The key must be the private half of the first (the server's own) certificate.
    private static func checkKey(
        _ keyText: String, matches certificateText: String, settings: TLSSettings
    )
        throws(ConfigurationError)
    {
        let leaf: Certificate
        do {
            let documents = try PEMDocument.parseMultiple(pemString: certificateText)
            guard let first = documents.first(where: { $0.discriminator == "CERTIFICATE" }) else {
                throw ConfigurationError(.tlsCertFile, "'\(settings.certificateFile)' holds no PEM certificate")
            }
            leaf = try Certificate(derEncoded: first.derBytes)
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError(.tlsCertFile, "'\(settings.certificateFile)' is not a PEM certificate file")
        }
        // Key kinds swift-certificates cannot read are left to the TLS library's own check.
        guard let privateKey = try? Certificate.PrivateKey(pemEncoded: keyText) else { return }
        guard privateKey.publicKey == leaf.publicKey else {
            throw ConfigurationError(
                .tlsKeyFile, "'\(settings.keyFile)' does not match the certificate in TLS_CERT_FILE")
        }
    }

    private static func read(_ path: String, for setting: Setting) throws(ConfigurationError) -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(setting, "cannot read '\(path)'")
        }
    }
}
