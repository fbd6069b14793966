import Crypto
import Foundation
import SwiftASN1
import X509

/// A certificate authority and a server certificate for `localhost` (and 127.0.0.1),
/// minted at test time and written as PEM files: no key is ever kept in git.
public struct TestCertificates: Sendable {
    public let folder: String
    public let caCertificatePath: String
    public let serverCertificatePath: String
    public let serverKeyPath: String

    /// - Parameters:
    ///   - serverName: the server certificate's DNS name (its subject alternative name); for
    ///     `localhost`, 127.0.0.1 is named too.
    ///   - serverValidity: when the server certificate is valid (default: from an hour ago
    ///     for a day); a past range makes an expired certificate.
    public static func mint(
        commonName: String = "swift-tcp-chat test CA", serverName: String = "localhost",
        serverValidity: Range<Date>? = nil
    ) throws -> TestCertificates {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("chat-certs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)

        let now = Date()
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName { CommonName(commonName) }
        let caCertificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(caKey.publicKey),
            notValidBefore: now - 3600,
            notValidAfter: now + 86400,
            issuer: caName,
            subject: caName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true))
            },
            issuerPrivateKey: .init(caKey)
        )

        let serverKey = P256.Signing.PrivateKey()
        let serverCertificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(serverKey.publicKey),
            notValidBefore: serverValidity?.lowerBound ?? now - 3600,
            notValidAfter: serverValidity?.upperBound ?? now + 86400,
            issuer: caName,
            subject: try DistinguishedName { CommonName(serverName) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                // The address too, unless the name alone is under test (a TLS client accepts a
                // certificate that names the address it connected to).
                SubjectAlternativeNames(
                    serverName == "localhost"
                        ? [.dnsName(serverName), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))]
                        : [.dnsName(serverName)])
            },
            issuerPrivateKey: .init(caKey)
        )

        let certificates = TestCertificates(
            folder: folder,
            caCertificatePath: folder + "/ca.pem",
            serverCertificatePath: folder + "/server.pem",
            serverKeyPath: folder + "/server-key.pem"
        )
        try caCertificate.serializeAsPEM().pemString
            .write(toFile: certificates.caCertificatePath, atomically: true, encoding: .utf8)
        try serverCertificate.serializeAsPEM().pemString
            .write(toFile: certificates.serverCertificatePath, atomically: true, encoding: .utf8)
        try serverKey.pemRepresentation
            .write(toFile: certificates.serverKeyPath, atomically: true, encoding: .utf8)
        return certificates
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: folder)
    }
}
