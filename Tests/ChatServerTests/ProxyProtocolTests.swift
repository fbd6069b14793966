import ChatCore
import ChatTestSupport
import Foundation
import Testing

@testable import ChatServer

/// `PROXY_PROTOCOL=on` over real sockets: the header's client is the client everywhere.
@Suite(.serialized) struct ProxyProtocolTests {
    private func proxied(
        trusted: String = "127.0.0.0/8", timeout: Duration = .seconds(5)
    )
        -> (inout ServerConfiguration) -> Void
    {
        { configuration in
            configuration.proxyProtocol = ProxyProtocolSettings(
                trustedProxies: IPNetwork.list(trusted)!, headerTimeout: timeout)
        }
    }

    private func v1(_ client: String, port: Int = 40000) -> [UInt8] {
        let family = client.contains(":") ? "TCP6" : "TCP4"
        let server = client.contains(":") ? "2001:db8::1" : "192.0.2.1"
        return Array("PROXY \(family) \(client) \(server) \(port) 8888\r\n".utf8)
    }

    @Test func theHeadersClientIsTheClientEverywhere() async throws {
        try await withTestServer(configure: proxied()) { server in
            let first = try await server.connect(from: "127.0.0.2")
            try await first.sendRaw(v1("203.0.113.7"))
            #expect(try await first.readLines(3) == ServerLine.welcome)
            // Another connection from the same proxy naming the same client: one IP.
            let second = try await server.connect(from: "127.0.0.2")
            try await second.sendRaw(v1("203.0.113.7", port: 40001))
            #expect(try await second.readLine() == "ERROR: IP address 203.0.113.7 already has an active connection")
            _ = try await second.waitForClose()
            // A different client through the same proxy is another IP.
            let third = try await server.connect(from: "127.0.0.2")
            try await third.sendRaw(v1("2001:db8:1:2::7"))
            #expect(try await third.readLines(3) == ServerLine.welcome)
            let occupancy = try await server.waitForOccupancy { $0.connections == 2 }
            #expect(occupancy.ipSlots == 2)
            #expect(server.log.text.contains("ip=203.0.113.7"))
            #expect(server.log.text.contains("ip=2001:db8:1:2::7"))
        }
    }

    @Test func chatBytesInTheSameReadAndAHeaderInPieces() async throws {
        try await withTestServer(configure: proxied()) { server in
            let together = try await server.connect(from: "127.0.0.2")
            try await together.sendRaw(v1("198.51.100.1") + Array("alice@example.com\r\n".utf8))
            #expect(try await together.readLines(3) == ServerLine.welcome)
            try await together.readUntil(ServerLine.otpPrompt)

            let pieces = try await server.connect(from: "127.0.0.3")
            let header = v1("198.51.100.2")
            for start in stride(from: 0, to: header.count, by: 7) {
                try await pieces.sendRaw(Array(header[start..<min(start + 7, header.count)]))
                try await Task.sleep(for: .milliseconds(5))  // So the pieces arrive apart.
            }
            #expect(try await pieces.readLines(3) == ServerLine.welcome)
        }
    }

    @Test func untrustedMissingLateAndGarbageAreClosedWithoutAWord() async throws {
        try await withTestServer(configure: proxied(trusted: "127.0.0.2/32", timeout: .seconds(1))) { server in
            // A valid header, but from an address that is not a trusted proxy.
            let untrusted = try await server.connect(from: "127.0.0.3")
            // The server may have closed it before the header goes out: either way, no word.
            try? await untrusted.sendRaw(v1("203.0.113.7"))
            #expect(try await untrusted.waitForClose() == [])
            // No header at all: closed at the deadline, which runs from the accept, so from
            // before the connect (a connect slowed by a busy machine ate into the margin).
            let started = ContinuousClock.now
            let silent = try await server.connect(from: "127.0.0.2")
            #expect(try await silent.waitForClose() == [])
            #expect(ContinuousClock.now - started >= .milliseconds(900))
            // A client that speaks the chat protocol straight away.
            let garbage = try await server.connect(from: "127.0.0.2")
            try? await garbage.sendRaw(Array("alice@example.com\r\n".utf8))
            #expect(try await garbage.waitForClose() == [])
            #expect(server.server.occupancy.connections == 0)
            #expect(server.log.text.contains("Connection from an address not in TRUSTED_PROXIES"))
        }
    }

    @Test func aVersion2LocalConnectionIsNotAClient() async throws {
        try await withTestServer(configure: proxied()) { server in
            let health = try await server.connect(from: "127.0.0.2")
            try? await health.sendRaw(ProxyHeader.v2Signature + [0x20, 0x00, 0x00, 0x00])
            #expect(try await health.waitForClose() == [])
            #expect(server.server.occupancy.connections == 0)
            // A version 2 PROXY header from the same proxy is a client.
            let client = try await server.connect(from: "127.0.0.2")
            try await client.sendRaw(
                ProxyHeader.v2Signature + [
                    0x21, 0x11, 0x00, 0x0C, 203, 0, 113, 9, 192, 0, 2, 1, 0x9C, 0x40, 0x22, 0xB8,
                ])
            #expect(try await client.readLines(3) == ServerLine.welcome)
            #expect(server.log.text.contains("ip=203.0.113.9"))
        }
    }
}
