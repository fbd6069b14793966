import ChatCore
import ChatTestSupport
import Foundation
import NIOCore
import Testing

@testable import ChatServer

/// The web listener (SPEC §10) over real sockets: the page's HTTP side, the handshake's
/// Origin check, every bad frame's close code, keepalive, and the line protocol with a TCP
/// user in the same room.
@Suite(.serialized) struct WebSocketTests {
    private func withWebServer(
        configure: @escaping (inout ServerConfiguration) -> Void = { _ in },
        _ body: @escaping @Sendable (TestServer) async throws -> Void
    ) async throws {
        try await withTestServer(
            configure: { configuration in
                configuration.web = WebSettings(
                    host: "127.0.0.1", port: 0, allowedOrigins: ["https://chat.example.com"],
                    trustedProxies: [IPNetwork("127.0.0.1/32")!], pingInterval: .seconds(30))
                configuration.maxLineBytes = 2048
                configure(&configuration)
            }, body)
    }

    @Test func aBrowserUserAndATerminalUserChatBothWays() async throws {
        try await withWebServer { server in
            let web = try await server.connectWeb()
            #expect(web.handshakeStatus == 101)
            #expect(try await web.readLines(3) == ServerLine.welcome)
            try await server.logIn(web, as: "alice")
            let bob = try await server.login("bob")
            try await web.readUntil("*** bob joined the room ***")
            try await bob.send("hello from a terminal")
            #expect(try await web.readLine() == "[bob]: hello from a terminal")
            #expect(try await bob.readLine() == "[bob]: hello from a terminal")
            try await web.send("hello from a browser")
            #expect(try await web.readLine() == "[alice]: hello from a browser")
            #expect(try await bob.readLine() == "[alice]: hello from a browser")
            // A trailing newline is dropped; one inside splits the message as TCP would.
            try await web.send("/msg bob one\n")
            #expect(try await bob.readLine() == "[alice]: [PM] one")
            try await web.send("first\r\nsecond")
            #expect(try await bob.readLines(2) == ["[alice]: first", "[alice]: second"])
            // A message in three fragments is one line.
            try await web.sendRaw(
                WebSocketWire.frame(.text, Array("in ".utf8), fin: false)
                    + WebSocketWire.frame(.ping, Array("are you there".utf8))
                    + WebSocketWire.frame(.continuation, Array("three ".utf8), fin: false)
                    + WebSocketWire.frame(.continuation, Array("parts".utf8)))
            #expect(try await bob.readLine() == "[alice]: in three parts")
            let echoes = try await web.readUntil("[alice]: in three parts")
            #expect(echoes == ["[PM to bob]: one", "[alice]: first", "[alice]: second"], "\(echoes)")
            // The same limits as TCP: the message length and flood control's answers.
            try await web.send(String(repeating: "x", count: 1025))
            #expect(try await web.readLine() == "ERROR: Message too long. Maximum length is 1024 characters.")
            // The shutdown notice, then a close frame that says it was not a failure.
            server.server.shutdown()
            #expect(try await web.waitForClose() == [ServerLine.shuttingDown])
            #expect(try await web.waitForCloseCode() == 1000)
        }
    }

    @Test func quitEndsWithGoodbyeAndANormalClose() async throws {
        try await withWebServer { server in
            let web = try await server.connectWeb()
            _ = try await web.readLines(3)
            try await web.send("/quit")
            #expect(try await web.waitForClose() == [ServerLine.goodbye])
            #expect(try await web.waitForCloseCode() == 1000)
        }
    }

    @Test func handshakesFromOtherSitesAreRefused() async throws {
        try await withWebServer { server in
            let port = try #require(server.webPort)
            let refused = [("Origin", "https://evil.example"), ("Origin", "null"), ("Origin", "http://127.0.0.1:1")]
            for header in refused {
                let client = try await server.connectWeb(headers: [header])
                #expect(client.handshakeStatus == 403, "\(header)")
                #expect(try await client.waitForClose().isEmpty)
            }
            // The page's own origin, one that is listed, and a client that is not a browser.
            for headers in [[("Origin", "http://127.0.0.1:\(port)")], [("Origin", "https://CHAT.example.com:443")], []]
            {
                let client = try await server.connectWeb(headers: headers)
                #expect(client.handshakeStatus == 101, "\(headers)")
                #expect(try await client.readLines(3) == ServerLine.welcome)
                await client.close()
            }
            // Behind a proxy that ends TLS (trusted: 127.0.0.1), the page was served over https.
            let proxied = try await server.connectWeb(
                from: "127.0.0.1",
                headers: [("Origin", "https://127.0.0.1:\(port)"), ("X-Forwarded-Proto", "https")])
            #expect(proxied.handshakeStatus == 101)
            await proxied.close()
            let untrusted = try await server.connectWeb(
                headers: [("Origin", "https://127.0.0.1:\(port)"), ("X-Forwarded-Proto", "https")])
            #expect(untrusted.handshakeStatus == 403)
        }
    }

    @Test func badFramesCloseWithTheCodeThatSaysWhy() async throws {
        try await withWebServer { server in
            let cases: [(String, [UInt8], UInt16)] = [
                ("binary", WebSocketWire.frame(.binary, [1, 2, 3]), 1003),
                ("invalid UTF-8", WebSocketWire.frame(.text, [0x68, 0xC3, 0x28]), 1007),
                ("a frame over the line limit", WebSocketWire.frame(.text, Array(repeating: 0x61, count: 2049)), 1009),
                (
                    "a message over the line limit in fragments",
                    WebSocketWire.frame(.text, Array(repeating: 0x61, count: 1500), fin: false)
                        + WebSocketWire.frame(.continuation, Array(repeating: 0x61, count: 1500)), 1009
                ),
                ("an unmasked frame", WebSocketWire.frame(.text, Array("hi".utf8), masked: false), 1002),
                ("a continuation with nothing to continue", WebSocketWire.frame(.continuation, [0x61]), 1002),
                ("a reserved bit", WebSocketWire.frame(.text, [0x61], rsv1: true), 1002),
                (
                    "a new message inside a fragmented one",
                    WebSocketWire.frame(.text, [0x61], fin: false) + WebSocketWire.frame(.text, [0x62]), 1002
                ),
            ]
            for (what, bytes, code) in cases {
                let client = try await server.connectWeb()
                _ = try await client.readLines(3)
                try await client.sendRaw(bytes)
                #expect(try await client.waitForCloseCode() == code, "\(what)")
            }
            // A client's close is answered with its code, and nobody is left behind.
            let leaving = try await server.connectWeb()
            _ = try await leaving.readLines(3)
            try await leaving.sendRaw(WebSocketWire.frame(.close, WebSocketWire.closePayload(1001)))
            #expect(try await leaving.waitForCloseCode() == 1001)
            _ = try await server.waitForOccupancy { $0.connections == 0 }
        }
    }

    @Test func aClientThatDoesNotAnswerPingsIsClosed() async throws {
        try await withWebServer(configure: { $0.web?.pingInterval = .seconds(1) }) { server in
            let silent = try await server.connectWeb(answersPings: false)
            let answering = try await server.connectWeb()
            _ = try await silent.readLines(3)
            _ = try await answering.readLines(3)
            // A quiet interval earns each a ping; another without an answer ends the silent one.
            server.clock.advance(by: .seconds(1))
            let pinged = try await poll(timeout: .seconds(10)) {
                silent.pingsReceived == 1 && answering.pingsReceived == 1
            }
            #expect(pinged)
            server.clock.advance(by: .seconds(1))
            #expect(try await silent.waitForCloseCode() == nil)
            #expect(!answering.isClosed)
            try await answering.send("not an address")
            try await answering.readUntil("ERROR: Invalid email address.")
        }
    }

    @Test func aBrowserAndATerminalFromOneAddressShareItsLimit() async throws {
        try await withWebServer(configure: { $0.maxConnectionsPerIP = 1 }) { server in
            let web = try await server.connectWeb(from: "127.0.0.7")
            #expect(try await web.readLines(3) == ServerLine.welcome)
            let terminal = try await server.connect(from: "127.0.0.7")
            #expect(
                try await terminal.waitForClose() == ["ERROR: IP address 127.0.0.7 already has an active connection"])
            await web.close()
            _ = try await server.waitForOccupancy { $0.ipSlots == 0 }
            let first = try await server.connectAndGreet(from: "127.0.0.8")
            let second = try await server.connectWeb(from: "127.0.0.8")
            #expect(try await second.waitForClose() == ["ERROR: IP address 127.0.0.8 already has an active connection"])
            #expect(try await second.waitForCloseCode() == 1000)
            await first.close()
        }
    }

    @Test func forwardedForNamesTheClientOnlyFromATrustedProxy() async throws {
        try await withWebServer(configure: { $0.maxConnectionsPerIP = 1 }) { server in
            // 127.0.0.1 is a trusted proxy: the right-most hop it did not add is the client.
            let forwarded = [("X-Forwarded-For", "203.0.113.9, 198.51.100.7")]
            let first = try await server.connectWeb(from: "127.0.0.1", headers: forwarded)
            #expect(try await first.readLines(3) == ServerLine.welcome)
            let second = try await server.connectWeb(from: "127.0.0.1", headers: forwarded)
            #expect(
                try await second.waitForClose() == ["ERROR: IP address 198.51.100.7 already has an active connection"])
            let other = try await server.connectWeb(from: "127.0.0.1", headers: [("X-Forwarded-For", "198.51.100.8")])
            #expect(try await other.readLines(3) == ServerLine.welcome)
            // Anyone else is who their socket says, whatever they claim.
            let claim = [("X-Forwarded-For", "198.51.100.9")]
            let direct = try await server.connectWeb(from: "127.0.0.9", headers: claim)
            #expect(try await direct.readLines(3) == ServerLine.welcome)
            let again = try await server.connectWeb(from: "127.0.0.9", headers: claim)
            #expect(try await again.waitForClose() == ["ERROR: IP address 127.0.0.9 already has an active connection"])
        }
    }

    @Test func behindAProxyProtocolBalancerTheHeaderNamesThePeer() async throws {
        try await withWebServer(configure: { configuration in
            configuration.maxConnectionsPerIP = 1
            configuration.proxyProtocol = ProxyProtocolSettings(
                trustedProxies: [IPNetwork("127.0.0.1/32")!], headerTimeout: .seconds(5))
        }) { server in
            let port = try #require(server.webPort)
            let header = "PROXY TCP4 198.51.100.20 127.0.0.1 50000 \(port)\r\n"
            let first = try await TestClient.connectWebSocket(
                port: port, from: "127.0.0.1", group: server.group, proxyHeader: header)
            #expect(try await first.readLines(3) == ServerLine.welcome)
            let second = try await TestClient.connectWebSocket(
                port: port, from: "127.0.0.1", group: server.group, proxyHeader: header)
            #expect(
                try await second.waitForClose() == ["ERROR: IP address 198.51.100.20 already has an active connection"])
            // A balancer in front of a trusted HTTP proxy: the header names the proxy, and
            // the proxy's X-Forwarded-For the client.
            let chained = try await TestClient.connectWebSocket(
                port: port, from: "127.0.0.1", group: server.group,
                headers: [("X-Forwarded-For", "203.0.113.30")],
                proxyHeader: "PROXY TCP4 127.0.0.1 127.0.0.1 50001 \(port)\r\n")
            #expect(try await chained.readLines(3) == ServerLine.welcome)
            let again = try await TestClient.connectWebSocket(
                port: port, from: "127.0.0.1", group: server.group,
                headers: [("X-Forwarded-For", "203.0.113.30")],
                proxyHeader: "PROXY TCP4 127.0.0.1 127.0.0.1 50002 \(port)\r\n")
            #expect(
                try await again.waitForClose() == ["ERROR: IP address 203.0.113.30 already has an active connection"])
        }
    }

    @Test func aBrowserThatStopsReadingIsDisconnected() async throws {
        try await withWebServer(configure: { $0.maxSendQueueBytes = 64 * 1024 }) { server in
            let slow = try await server.connectWeb(receiveBufferSize: 2048)
            _ = try await slow.readLines(3)
            try await server.logIn(slow, as: "slow")
            let bob = try await server.login("bob")
            try await slow.stallWithAFullSendQueue()
            _ = try await slow.waitForClose()
            // The others never noticed.
            try await bob.send("/users")
            #expect(try await bob.readUntil("  - bob (you)").contains("Online Users (1):"))
        }
    }

    @Test func thePageIsServedWithHeadersThatKeepItToItself() async throws {
        try await withWebServer(configure: { $0.web?.pingInterval = .seconds(1) }) { server in
            let port = try #require(server.webPort)
            let page = try await httpRequest(port: port, path: "/")
            #expect(page.status == 200)
            #expect(page.headers["content-type"] == "text/html; charset=utf-8")
            #expect(page.body.contains(#"<script type="module" src="/chat.js"></script>"#))
            #expect(page.headers["content-security-policy"] == WebPageHandler.contentSecurityPolicy)
            #expect(page.headers["x-content-type-options"] == "nosniff")
            #expect(page.headers["cache-control"] == "no-cache")
            let entityTag = try #require(page.headers["etag"])
            let cached = try await httpRequest(port: port, path: "/", headers: ["If-None-Match": entityTag])
            #expect(cached.status == 304 && cached.body.isEmpty)
            for (path, type) in [
                ("/chat.js", "text/javascript"), ("/lines.js", "text/javascript"), ("/chat.css", "text/css"),
                ("/favicon.svg", "image/svg+xml"),
            ] {
                let file = try await httpRequest(port: port, path: path)
                #expect(file.status == 200 && file.headers["content-type"]?.hasPrefix(type) == true, "\(path)")
            }
            #expect(try await httpRequest(port: port, path: "/../etc/passwd").status == 404)
            #expect(try await httpRequest(port: port, path: "/nothing-here").status == 404)
            #expect(try await httpRequest("POST", port: port, path: "/").status == 405)
            #expect(try await httpRequest("HEAD", port: port, path: "/chat.js").status == 200)
            #expect(try await httpRequest(port: port, path: "/ws").status == 426)
            // A connection that asks for nothing does not keep its socket.
            let idle = try await TestClient.connect(port: port, from: server.nextSourceAddress(), group: server.group)
            #expect(try await idle.waitForClose(timeout: .seconds(10)).isEmpty)
        }
    }

    @Test func theSameOverHTTPSAndEachListenerCounted() async throws {
        let certificates = try TestCertificates.mint()
        defer { certificates.remove() }
        try await withWebServer(configure: { configuration in
            // The certificate serves only the web listener's HTTPS port here (no TLS_PORT).
            configuration.tls = TLSSettings(
                port: nil, certificateFile: certificates.serverCertificatePath, keyFile: certificates.serverKeyPath)
            configuration.web?.tlsPort = 0
            configuration.metrics = MetricsSettings(host: "127.0.0.1", port: 0)
        }) { server in
            #expect(try await server.server.localAddress(of: "tls") == nil)
            let tlsPort = try #require(try await server.server.localAddress(of: "web-tls")?.port)
            let metricsPort = try #require(try await server.server.localAddress(of: "metrics")?.port)
            let secure = try await TestClient.connectWebSocket(
                port: tlsPort, from: server.nextSourceAddress(), group: server.group,
                headers: [("Origin", "https://127.0.0.1:\(tlsPort)")],
                tls: TestClient.TLS(caFile: certificates.caCertificatePath))
            #expect(secure.handshakeStatus == 101)
            #expect(try await secure.readLines(3) == ServerLine.welcome)
            try await server.logIn(secure, as: "alice")
            let plain = try await server.connectWeb()
            #expect(try await plain.readLines(3) == ServerLine.welcome)
            // The page's origin over plain HTTP is not the HTTPS port's.
            let crossScheme = try await TestClient.connectWebSocket(
                port: tlsPort, from: server.nextSourceAddress(), group: server.group,
                headers: [("Origin", "http://127.0.0.1:\(tlsPort)")],
                tls: TestClient.TLS(caFile: certificates.caCertificatePath))
            #expect(crossScheme.handshakeStatus == 403)
            let counted = try await poll(timeout: .seconds(10)) {
                let text = try await httpRequest(port: metricsPort, path: "/metrics").body
                let samples = try PrometheusSamples(text)
                return try samples.value(#"chat_connections_open{listener="web"}"#) == 1
                    && samples.value(#"chat_connections_open{listener="web-tls"}"#) == 1
                    && samples.value(#"chat_connections_open{listener="tcp"}"#) == 0
            }
            #expect(counted)
        }
    }

    @Test func aCertificateReloadReachesTheHTTPSListenerToo() async throws {
        let first = try TestCertificates.mint(commonName: "first CA")
        let second = try TestCertificates.mint(commonName: "second CA")
        defer {
            first.remove()
            second.remove()
        }
        try await withWebServer(configure: { configuration in
            configuration.tls = TLSSettings(
                port: nil, certificateFile: first.serverCertificatePath, keyFile: first.serverKeyPath)
            configuration.web?.tlsPort = 0
        }) { server in
            let tlsPort = try #require(try await server.server.localAddress(of: "web-tls")?.port)
            func connect(trusting ca: String) async throws -> TestClient {
                try await TestClient.connectWebSocket(
                    port: tlsPort, from: server.nextSourceAddress(), group: server.group,
                    tls: TestClient.TLS(caFile: ca))
            }
            let before = try await connect(trusting: first.caCertificatePath)
            #expect(try await before.readLines(3) == ServerLine.welcome)
            // A renewal: the files replaced, then SIGHUP (here: the call it makes).
            for (from, to) in [
                (second.serverCertificatePath, first.serverCertificatePath),
                (second.serverKeyPath, first.serverKeyPath),
            ] {
                try Data(contentsOf: URL(fileURLWithPath: from)).write(to: URL(fileURLWithPath: to))
            }
            #expect(server.server.reloadCertificates())
            let after = try await connect(trusting: second.caCertificatePath)
            #expect(after.handshakeStatus == 101)
            #expect(try await after.readLines(3) == ServerLine.welcome)
            // The connection made before keeps its session.
            try await before.send("not an address")
            try await before.readUntil("ERROR: Invalid email address.")
        }
    }
}
