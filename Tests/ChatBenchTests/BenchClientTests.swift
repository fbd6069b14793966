import ChatServer
import ChatTestSupport
import NIOCore
import NIOPosix
import Testing

@testable import chat_bench

/// The load generator's client against a real server.
@Suite struct BenchClientTests {
    @Test func aLoginThatEndedBeforeAnyoneWaitedStillEndsTheWait() async throws {
        try await withTestServer { server in
            let mail = MailWatcher(directory: server.mail.path)
            let watching = Task { await mail.run() }
            defer {
                mail.stop()
                watching.cancel()
            }
            let channel = try await connectBenchClient(port: server.port, server: server, mail: mail, runID: "wait")
            defer { channel.close(promise: nil) }
            @Sendable func client() throws -> BenchClient {
                try channel.pipeline.syncOperations.handler(type: BenchClient.self)
            }
            // The client logs in on its own, as soon as it is connected; the task that
            // connected it comes to wait only now, after the login.
            let loggedIn = try await poll(timeout: .seconds(10)) {
                try await channel.eventLoop.submit({ try client().isLoggedIn }).get()
            }
            guard loggedIn else { throw TestFailure("the client did not log in") }
            let endedAtOnce = try await channel.eventLoop.submit {
                let done = channel.eventLoop.makePromise(of: Void.self)
                var ended = false
                try client().startLogin(done)
                // A completed future runs the callback at once. Before the fix the promise
                // was kept and never completed: then it is failed here, not leaked.
                done.futureResult.assumeIsolated().whenComplete { _ in ended = true }
                let completed = ended
                if !completed { done.fail(TestFailure("the login's wait did not end")) }
                return completed
            }.get()
            #expect(endedAtOnce)
        }
    }

    /// `--websocket`: the same client, through the web listener, logs in and gets its own
    /// lines back as lines.
    @Test func overAWebSocketTheClientIsTheSame() async throws {
        // Lines stamped before the run's start count as history: start it now, as chat-bench does.
        _ = BenchClient.runStarted
        try await withTestServer(configure: { $0.web = WebSettings(host: "127.0.0.1", port: 0) }) { server in
            let webPort = try #require(server.webPort)
            let mail = MailWatcher(directory: server.mail.path)
            let watching = Task { await mail.run() }
            defer {
                mail.stop()
                watching.cancel()
            }
            let channel = try await connectBenchClient(
                port: webPort, server: server, mail: mail, runID: "websocket",
                webSocketHost: "127.0.0.1:\(webPort)")
            defer { channel.close(promise: nil) }
            @Sendable func client() throws -> BenchClient {
                try channel.pipeline.syncOperations.handler(type: BenchClient.self)
            }
            let loggedIn = try await poll(timeout: .seconds(10)) {
                try await channel.eventLoop.submit({ try client().isLoggedIn }).get()
            }
            #expect(loggedIn)
            // Its stamped lines come back to it through the same framing, none lost.
            try await channel.eventLoop.submit {
                let bench = try client()
                bench.senderIndex = 0
                for _ in 0..<5 { bench.send() }
            }.get()
            let received = try await poll(timeout: .seconds(10)) {
                try await channel.eventLoop.submit({ try client().missing(sent: [5]) == 0 }).get()
            }
            #expect(received)
        }
    }

    /// One bench client connected to the test server (through `WebSocketFraming` when
    /// `webSocketHost` names the web listener), logging in on its own.
    private func connectBenchClient(
        port: Int, server: TestServer, mail: MailWatcher, runID: String, webSocketHost: String? = nil
    ) async throws -> any Channel {
        try await ClientBootstrap(group: server.group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let webSocketHost {
                        try channel.pipeline.syncOperations.addHandler(WebSocketFraming(host: webSocketHost))
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        BenchClient(index: 0, room: nil, senders: 1, stats: LoopStats(), mail: mail, runID: runID))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
    }
}
