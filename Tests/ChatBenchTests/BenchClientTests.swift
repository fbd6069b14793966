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
            let channel = try await ClientBootstrap(group: server.group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            BenchClient(
                                index: 0, room: nil, senders: 1, stats: LoopStats(), mail: mail, runID: "wait"))
                    }
                }
                .connect(host: "127.0.0.1", port: server.port).get()
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
}
