import ChatCore
import ChatTestSupport
import Foundation
import NIOCore
import Testing

@testable import ChatServer

/// The metrics endpoint, scraped with a real HTTP client while real clients log in and chat.
@Suite(.serialized) struct MetricsTests {
    private func withMetricsServer(
        configure: @escaping (inout ServerConfiguration) -> Void = { _ in },
        _ body: @escaping @Sendable (TestServer, _ metricsPort: Int) async throws -> Void
    ) async throws {
        try await withTestServer(
            configure: { configuration in
                configuration.metrics = MetricsSettings(host: "127.0.0.1", port: 0)
                configure(&configuration)
            }
        ) { server in
            let port = try #require(try await server.server.localAddress(of: "metrics")?.port)
            try await body(server, port)
        }
    }

    private func scrape(_ port: Int) async throws -> PrometheusSamples {
        let response = try await httpRequest(port: port, path: "/metrics")
        #expect(response.status == 200)
        return try PrometheusSamples(response.body)
    }

    /// Scrapes until `condition` holds (the gauges follow closes a moment later), bounded.
    private func scrape(
        _ port: Int, until condition: (PrometheusSamples) throws -> Bool
    ) async throws -> PrometheusSamples {
        var samples = try await scrape(port)
        let reached = try await poll(every: .milliseconds(20), timeout: .seconds(10)) {
            () throws -> PrometheusSamples? in
            samples = try await scrape(port)
            return try condition(samples) ? samples : nil
        }
        guard let reached else { throw TestFailure("metrics never got there: \(samples)") }
        return reached
    }

    @Test func countersAndGaugesMoveByTheRightAmounts() async throws {
        try await withMetricsServer(configure: { $0.maxConnectionsPerIP = 1 }) { server, port in
            let start = try await scrape(port)
            for series in [
                "chat_logins_total", "chat_users_online", "chat_messages_total", "chat_deliveries_total",
                #"chat_connections_open{listener="tcp"}"#, #"chat_login_failures_total{reason="invalid_email"}"#,
                #"chat_connections_refused_total{reason="ip_limit"}"#, #"chat_otp_mails_total{result="sent"}"#,
            ] {
                #expect(try start.value(series) == 0, "\(series)")
            }

            let alice = try await server.login("alice")
            let bob = try await server.login("bob")
            try await alice.readUntil("*** bob joined the room ***")
            let carol = try await server.connectAndGreet()
            try await carol.send("not-an-address")
            try await carol.readUntil(ServerLine.emailPrompt)
            for n in 1...3 { try await alice.send("line \(n)") }
            try await alice.send("/me waves")
            try await bob.readUntil("* alice waves")
            try await alice.readUntil("* alice waves")
            try await alice.send("/msg bob psst")
            try await bob.readUntil(ServerLine.privateMessage(from: "alice", "psst"))
            // A second connection from alice's address is over MAX_CONNECTIONS_PER_IP.
            let second = try await server.connect(from: alice.source)
            _ = try await second.waitForClose()

            let after = try await scrape(port) { try $0.value(#"chat_connections_open{listener="tcp"}"#) == 3 }
            #expect(try after.value("chat_logins_total") == 2)
            #expect(try after.value(#"chat_otp_mails_total{result="sent"}"#) == 2)
            #expect(try after.value(#"chat_otp_mails_total{result="failed"}"#) == 0)
            #expect(try after.value(#"chat_login_failures_total{reason="invalid_email"}"#) == 1)
            #expect(try after.value(#"chat_login_failures_total{reason="invalid_code"}"#) == 0)
            #expect(try after.value(#"chat_connections_refused_total{reason="ip_limit"}"#) == 1)
            // Four room lines (three chat lines and an action), each to both members.
            #expect(try after.value("chat_messages_total") == 4)
            #expect(try after.value("chat_deliveries_total") == 8)
            #expect(try after.value("chat_private_messages_total") == 1)
            #expect(try after.value("chat_users_online") == 2)
            #expect(try after.value("chat_rooms") == 1)
            #expect(try after.value("chat_bans_active") == 0)
            #expect(try after.value(#"chat_event_loop_queued_lines{loop="0"}"#) >= 0)
            #expect(try after.value(#"chat_event_loop_queued_lines{loop="1"}"#) >= 0)

            await bob.close()
            let gone = try await scrape(port) { try $0.value("chat_users_online") == 1 }
            #expect(try gone.value(#"chat_connections_open{listener="tcp"}"#) == 2)
            #expect(try gone.value("chat_logins_total") == 2)
        }
    }

    @Test func floodsAndMistypedCodesAreCounted() async throws {
        try await withMetricsServer(configure: {
            $0.limits.messageBurst = 5
            $0.limits.messagesPerSecond = 1
            $0.limits.maxQueuedLines = 5
        }) { server, port in
            let alice = try await server.connectAndGreet()
            try await alice.send("alice@example.com")
            try await alice.readUntil(ServerLine.otpPrompt)
            let code = try await server.mail.code(for: "alice@example.com", mailIndex: 0)
            try await alice.send(code == "000000" ? "111111" : "000000")
            #expect(try await alice.readLine().hasPrefix("ERROR: Invalid OTP code"))
            let failed = try await scrape(port)
            #expect(try failed.value(#"chat_login_failures_total{reason="invalid_code"}"#) == 1)
            #expect(try failed.value(#"chat_otp_mails_total{result="sent"}"#) == 1)
            #expect(try failed.value("chat_logins_total") == 0)

            let flooder = try await server.login("flooder")
            try await flooder.sendRaw(Array(String(repeating: "/users\n", count: 1000).utf8))
            _ = try await flooder.waitForClose()
            let flooded = try await scrape(port) { try $0.value(#"chat_disconnects_total{reason="flood"}"#) == 1 }
            #expect(try flooded.value(#"chat_disconnects_total{reason="slow_consumer"}"#) == 0)
            #expect(try flooded.value("chat_logins_total") == 1)
        }
    }

    @Test func slowConsumersAndFailedHandshakesAreCounted() async throws {
        let certificates = try TestCertificates.mint()
        defer { certificates.remove() }
        try await withMetricsServer(configure: { configuration in
            configuration.maxSendQueueBytes = 64 * 1024
            configuration.tls = TLSSettings(
                port: 0, certificateFile: certificates.serverCertificatePath, keyFile: certificates.serverKeyPath)
        }) { server, port in
            // Past MAX_SENDQ_BYTES a client that does not read is disconnected.
            let slow = try await server.login("slow", receiveBufferSize: 2048)
            try await slow.stallWithAFullSendQueue()
            _ = try await slow.waitForClose()
            // A plaintext client on the TLS port fails the handshake.
            let tlsPort = try #require(server.tlsPort)
            let plaintext = try await TestClient.connect(
                port: tlsPort, from: server.nextSourceAddress(), group: server.group)
            try await plaintext.send("alice@example.com")
            _ = try await plaintext.waitForClose()

            let samples = try await scrape(port) {
                try $0.value(#"chat_disconnects_total{reason="slow_consumer"}"#) == 1
                    && $0.value(#"chat_connections_refused_total{reason="tls_handshake"}"#) == 1
            }
            #expect(try samples.value(#"chat_disconnects_total{reason="flood"}"#) == 0)
            #expect(try samples.value(#"chat_connections_open{listener="tls"}"#) == 0)
        }
    }

    @Test func healthAndTheOtherRoutes() async throws {
        try await withMetricsServer { server, port in
            let health = try await httpRequest(port: port, path: "/health")
            #expect(health.status == 200)
            #expect(health.body == "OK\n")
            #expect(try await httpRequest("HEAD", port: port, path: "/health").status == 200)
            let metrics = try await httpRequest(port: port, path: "/metrics?name=x")
            #expect(metrics.status == 200)
            #expect(metrics.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
            #expect(metrics.body.contains("# TYPE chat_logins_total counter"))
            #expect(metrics.body.contains("# TYPE chat_users_online gauge"))
            #expect(try await httpRequest(port: port, path: "/").status == 404)
            #expect(try await httpRequest(port: port, path: "/metricsx").status == 404)
            let post = try await httpRequest("POST", port: port, path: "/metrics")
            #expect(post.status == 405)
            #expect(post.headers["allow"] == "GET, HEAD")
            // Not HTTP at all: NIO's codec answers 400 and closes.
            let garbage = try await TestClient.connect(port: port, from: "127.0.0.1", group: server.group)
            try await garbage.sendRaw(Array("this is not http\r\n\r\n".utf8))
            // Closed at once, not by the 10 s idle timeout.
            let lines = try await garbage.waitForClose(timeout: .seconds(3))
            #expect(lines.first == "HTTP/1.1 400 Bad Request\r")
        }
    }

    /// `/health` turns 503 as soon as the server stops accepting, while connections drain.
    @Test func healthTurnsUnavailableWhenShutdownBegins() async throws {
        try await withMetricsServer(configure: {
            $0.shutdownTimeout = .seconds(5)
            $0.maxSendQueueBytes = 64 * 1024 * 1024
        }) { server, port in
            // A user who never reads: the shutdown notice cannot be flushed to them, so the
            // drain lasts until the shutdown timeout.
            let stuck = try await server.login("stuck", receiveBufferSize: 2048)
            try await stuck.stallWithAFullSendQueue()
            #expect(try await httpRequest(port: port, path: "/health").status == 200)

            server.server.shutdown()
            var status = 200
            _ = try await poll(every: .milliseconds(20), timeout: .seconds(3)) {
                status = try await httpRequest(port: port, path: "/health").status
                return status != 200
            }
            #expect(status == 503)
            // Metrics are still served while the connections drain.
            #expect(try await scrape(port).value("chat_users_online") == 1)
        }
    }
}
