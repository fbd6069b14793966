import ChatTestSupport
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import ChatServer

/// The server's own accepting, on real sockets: what it binds, what it hands over, and that
/// closing stops its thread and frees the port.
@Suite struct ConnectionAcceptorTests {
    @Test func anEphemeralPortIsReportedAndEveryConnectionHandedOver() async throws {
        let acceptor = try ConnectionAcceptor(host: "127.0.0.1", port: 0, backlog: 16)
        let port = try #require(acceptor.localAddress.port)
        #expect(port > 0)
        let accepted = NIOLockedValueBox<[CInt]>([])
        let thread = AcceptorThread(acceptor) { socket in
            let greeting = Array("hello \(socket)\n".utf8)
            _ = greeting.withUnsafeBytes { write(socket, $0.baseAddress, $0.count) }
            accepted.withLockedValue { $0.append(socket) }
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var clients: [TestClient] = []
        for index in 0..<3 {
            clients.append(try await TestClient.connect(port: port, from: "127.0.0.\(index + 2)", group: group))
        }
        for client in clients {
            #expect(try await client.readLine().hasPrefix("hello "))
        }
        let sockets = accepted.withLockedValue { $0 }
        #expect(sockets.count == 3)
        // Non-blocking and close-on-exec, as NIO and any child process need them.
        for socket in sockets {
            #expect(fcntl(socket, F_GETFL) & O_NONBLOCK != 0)
            #expect(fcntl(socket, F_GETFD) & FD_CLOEXEC != 0)
            close(socket)
        }
        for client in clients { await client.close() }

        acceptor.close()
        #expect(try await thread.waitUntilStopped(), "the accepting thread still runs after close()")
        await #expect(throws: (any Error).self) {
            _ = try await TestClient.connect(port: port, from: "127.0.0.9", group: group)
        }
        try await group.shutdownGracefully()
    }

    @Test func closingBeforeRunningFreesThePortAndRunThenReturnsAtOnce() async throws {
        let acceptor = try ConnectionAcceptor(host: "127.0.0.1", port: 0, backlog: 16)
        let port = try #require(acceptor.localAddress.port)
        acceptor.close()
        // The port is free again: binding it succeeds.
        let again = try ConnectionAcceptor(host: "127.0.0.1", port: port, backlog: 16)
        let thread = AcceptorThread(acceptor) { _ in Issue.record("a closed acceptor accepted") }
        #expect(try await thread.waitUntilStopped())
        again.close()
    }

    @Test func aPortInUseIsAnErrorNamingTheAddress() throws {
        let first = try ConnectionAcceptor(host: "127.0.0.1", port: 0, backlog: 16)
        defer { first.close() }
        let port = try #require(first.localAddress.port)
        #expect {
            _ = try ConnectionAcceptor(host: "127.0.0.1", port: port, backlog: 16)
        } throws: { error in
            "\(error)".contains("bind(127.0.0.1:\(port))") && "\(error)".contains("Address already in use")
        }
    }
}

/// Runs an acceptor on a thread of its own, as the server does.
private final class AcceptorThread: Sendable {
    private let stopped = NIOLockedValueBox(false)

    init(_ acceptor: ConnectionAcceptor, adopt: @escaping @Sendable (CInt) -> Void) {
        Thread.detachNewThread { [stopped] in
            acceptor.run(logger: Logger(label: "test"), adopt: adopt)
            stopped.withLockedValue { $0 = true }
        }
    }

    /// Whether the thread returned within five seconds.
    func waitUntilStopped() async throws -> Bool {
        try await poll(every: .milliseconds(10), timeout: .seconds(5)) { self.stopped.withLockedValue { $0 } }
    }
}
