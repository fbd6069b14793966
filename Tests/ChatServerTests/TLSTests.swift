import ChatCore
import ChatTestSupport
import Foundation
import Testing

@testable import ChatServer

/// The TLS listener with certificates minted at test time, and NIOSSL as the client.
@Suite(.serialized) struct TLSTests {
    private func withTLSServer(
        _ certificates: TestCertificates, handshakeTimeout: Duration = .seconds(10),
        _ body: @escaping @Sendable (TestServer) async throws -> Void
    ) async throws {
        try await withTestServer(
            configure: { configuration in
                configuration.tls = TLSSettings(
                    port: 0, certificateFile: certificates.serverCertificatePath, keyFile: certificates.serverKeyPath,
                    handshakeTimeout: handshakeTimeout)
            }, body)
    }

    @Test func usersOverTLSAndPlainTCPChatTogether() async throws {
        let certificates = try TestCertificates.mint()
        defer { certificates.remove() }
        try await withTLSServer(certificates) { server in
            let alice = try await server.connectTLS(TestClient.TLS(caFile: certificates.caCertificatePath))
            #expect(try await alice.readLines(3) == ServerLine.welcome)
            try await server.logIn(alice, as: "alice")
            let bob = try await server.login("bob")
            try await alice.readUntil("*** bob joined the room ***")
            try await bob.send("hello over plain TCP")
            #expect(try await alice.readLine() == "[bob]: hello over plain TCP")
            try await alice.send("hello over TLS")
            try await bob.readUntil("[alice]: hello over TLS")
        }
    }

    @Test func aReloadServesTheNewCertificateToNewConnectionsAndKeepsTheOld() async throws {
        let first = try TestCertificates.mint(commonName: "first CA")
        let second = try TestCertificates.mint(commonName: "second CA")
        defer {
            first.remove()
            second.remove()
        }
        try await withTLSServer(first) { server in
            let alice = try await server.connectTLS(TestClient.TLS(caFile: first.caCertificatePath))
            #expect(try await alice.readLines(3) == ServerLine.welcome)
            try await server.logIn(alice, as: "alice")

            // A renewal: the files are replaced, then SIGHUP (here: the call it makes).
            for (from, to) in [
                (second.serverCertificatePath, first.serverCertificatePath),
                (second.serverKeyPath, first.serverKeyPath),
            ] {
                try Data(contentsOf: URL(fileURLWithPath: from)).write(to: URL(fileURLWithPath: to))
            }
            #expect(server.server.reloadCertificates())
            let renewed = try await server.connectTLS(TestClient.TLS(caFile: second.caCertificatePath))
            #expect(try await renewed.readLines(3) == ServerLine.welcome)
            let stale = try await server.connectTLS(TestClient.TLS(caFile: first.caCertificatePath))
            _ = try await stale.waitForClose()
            #expect(stale.error != nil)
            // The connection made before the reload keeps chatting.
            try await alice.send("still here")
            #expect(try await alice.readLine() == "[alice]: still here")

            // A bad new file keeps the current pair, and says why.
            try "not a certificate".write(toFile: first.serverCertificatePath, atomically: true, encoding: .utf8)
            #expect(!server.server.reloadCertificates())
            #expect(server.log.text.contains("TLS certificate not reloaded; keeping the current one"))
            let afterBadReload = try await server.connectTLS(TestClient.TLS(caFile: second.caCertificatePath))
            #expect(try await afterBadReload.readLines(3) == ServerLine.welcome)
        }
    }

    @Test(arguments: ["expired", "wrong host"])
    func expiredAndWrongHostCertificatesAreRefusedByClients(_ reason: String) async throws {
        let certificates =
            reason == "expired"
            ? try TestCertificates.mint(serverValidity: Date() - 86400 * 2..<Date() - 86400)
            : try TestCertificates.mint(serverName: "chat.example.net")
        defer { certificates.remove() }
        do {
            try await withTLSServer(certificates) { server in
                let client = try await server.connectTLS(TestClient.TLS(caFile: certificates.caCertificatePath))
                #expect(try await client.waitForClose() == [], "\(reason)")
                #expect(client.error != nil, "\(reason)")
                // Nobody was admitted, and the plain listener serves as before.
                _ = try await server.waitForOccupancy { $0.connections == 0 }
                _ = try await server.login("bob")
            }
        }
    }

    @Test func plaintextAndSilentClientsOnTheTLSPortAreClosedAndDisturbNobody() async throws {
        let certificates = try TestCertificates.mint()
        defer { certificates.remove() }
        try await withTLSServer(certificates, handshakeTimeout: .seconds(1)) { server in
            let alice = try await server.login("alice")
            let tlsPort = try #require(server.tlsPort)
            // Speaking the chat protocol in plain text to the TLS port.
            let plain = try await TestClient.connect(port: tlsPort, from: "127.0.0.50", group: server.group)
            try? await plain.send("alice@example.com")
            let plainLines = try await plain.waitForClose()
            #expect(plainLines.allSatisfy { !$0.contains("***") })
            // Saying nothing: closed at the handshake deadline, never admitted.
            let silent = try await TestClient.connect(port: tlsPort, from: "127.0.0.51", group: server.group)
            #expect(server.server.occupancy.connections == 1)
            let started = ContinuousClock.now
            #expect(try await silent.waitForClose() == [])
            #expect(ContinuousClock.now - started >= .milliseconds(900))
            try await alice.send("nobody noticed")
            #expect(try await alice.readLine() == "[alice]: nobody noticed")
        }
    }

    @Test func startUpNamesTheSettingWhoseFileCannotBeUsed() throws {
        let good = try TestCertificates.mint()
        let other = try TestCertificates.mint()
        defer {
            good.remove()
            other.remove()
        }
        let notPEM = good.folder + "/not.pem"
        try "hello".write(toFile: notPEM, atomically: true, encoding: .utf8)
        let cases: [(String, String, Setting, String)] = [
            (notPEM, good.serverKeyPath, .tlsCertFile, "is not a PEM certificate file"),
            (good.serverCertificatePath, notPEM, .tlsKeyFile, "is not a PEM private key"),
            (good.serverCertificatePath, other.serverKeyPath, .tlsKeyFile, "does not match the certificate"),
            (good.folder + "/missing.pem", good.serverKeyPath, .tlsCertFile, "cannot read"),
        ]
        for (certificate, key, setting, problem) in cases {
            do {
                _ = try TLSContextStore(settings: TLSSettings(port: 0, certificateFile: certificate, keyFile: key))
                Issue.record("accepted \(certificate) with \(key)")
            } catch {
                #expect(error.setting == setting)
                #expect(error.description.contains(problem), "\(error)")
            }
        }
        // A chain (the certificate, then its issuer) is accepted.
        let chain = good.folder + "/chain.pem"
        try
            (String(contentsOfFile: good.serverCertificatePath, encoding: .utf8) + "\n"
            + String(contentsOfFile: good.caCertificatePath, encoding: .utf8))
            .write(toFile: chain, atomically: true, encoding: .utf8)
        _ = try TLSContextStore(settings: TLSSettings(port: 0, certificateFile: chain, keyFile: good.serverKeyPath))
    }
}
