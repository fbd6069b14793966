import Foundation
import NIOSSL

/// What the command line asked for, checked and read.
struct ClientOptions: Sendable {
    struct TLS: Sendable {
        /// The certificates of `--ca-file`, read before connecting; `nil`: the system's.
        var trustRoots: [NIOSSLCertificate]?
        var verify: Bool
    }

    var endpoint: ServerEndpoint
    var tls: TLS?
    var colors: Bool
    var reconnect: Bool
    /// Keep a resume token and sign in with it (`--no-remember`: never).
    var remember: Bool = true
}

extension ClientOptions.TLS {
    /// Reads `--ca-file` once, before any connection, so that a missing or unreadable file
    /// is named as such rather than reported as a connection that failed.
    /// - Throws: the message for the user.
    static func trustRoots(inFile path: String) throws(TrustRootsError) -> [NIOSSLCertificate] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw TrustRootsError("--ca-file \(path): no such file")
        }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw TrustRootsError("--ca-file \(path): cannot read the file (permission denied)")
        }
        guard let certificates = try? NIOSSLCertificate.fromPEMFile(path), !certificates.isEmpty else {
            throw TrustRootsError("--ca-file \(path): not a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)")
        }
        return certificates
    }
}

struct TrustRootsError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
