import CSockets
import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// A listening socket whose connections the server accepts itself, on a thread of its own,
/// and hands to NIO one by one (`ClientBootstrap.withConnectedSocket`).
///
/// Why not NIO's `ServerBootstrap`: a channel NIO accepted never tells its descriptor, and
/// the loop shards write room lines straight to plain TCP sockets (``LocalSession``): NIO's
/// per-write path was about a third of the CPU per delivery in a big room at chat rates. A
/// socket the server accepted itself, it knows.
///
/// Accepting waits in `poll` on the listening socket and on a pipe that ``close()`` writes
/// to, so closing needs no timeout and no reliance on how `shutdown` wakes `accept`.
/// The listening socket is closed only once the thread has stopped using it: a descriptor
/// number closed under a running `accept` could be reused by any file the process opens.
final class ConnectionAcceptor: Sendable {
    /// The address the socket is bound to (with the port the system chose for port 0).
    let localAddress: SocketAddress
    private let listening: CInt
    /// The pipe ``close()`` wakes the thread through: read end, write end.
    private let wakeUp: (CInt, CInt)
    private let state = NIOLockedValueBox(State.idle)

    private enum State {
        case idle
        case accepting
        /// ``close()`` was called; the thread stops at its next wake-up.
        case closing
        /// The descriptors are closed.
        case closed
    }

    /// How long accepting pauses after the process ran out of descriptors or memory (as
    /// NIO's `AcceptBackoffHandler` does): the pending connection stays in the backlog,
    /// and retrying at once would spin.
    static let backoff: CInt = 1000

    /// Binds and listens.
    /// - Throws: `IOError` when the address cannot be resolved, bound or listened on.
    init(host: String, port: Int, backlog: CInt) throws {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let family = address.protocol.rawValue
        let listening = socket(family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard listening >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        var created = false
        defer { if !created { Glibc.close(listening) } }
        var one: CInt = 1
        guard setsockopt(listening, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size)) == 0 else {
            throw IOError(errnoCode: errno, reason: "setsockopt(SO_REUSEADDR)")
        }
        let bound = address.withSockAddr { pointer, size in Glibc.bind(listening, pointer, socklen_t(size)) }
        guard bound == 0 else { throw IOError(errnoCode: errno, reason: "bind(\(host):\(port))") }
        guard listen(listening, backlog) == 0 else { throw IOError(errnoCode: errno, reason: "listen") }
        let localAddress = try Self.boundAddress(of: listening, resolved: address)
        var pipe: [CInt] = [-1, -1]
        guard c_sockets_pipe(&pipe) == 0 else { throw IOError(errnoCode: errno, reason: "pipe2") }
        self.localAddress = localAddress
        self.listening = listening
        self.wakeUp = (pipe[0], pipe[1])
        created = true
    }

    /// The address with the port the socket really has.
    private static func boundAddress(of socket: CInt, resolved: SocketAddress) throws -> SocketAddress {
        let port = c_sockets_local_port(socket)
        guard port >= 0 else { throw IOError(errnoCode: errno, reason: "getsockname") }
        return try SocketAddress(ipAddress: resolved.ipAddress ?? "0.0.0.0", port: Int(port))
    }

    /// Accepts until ``close()``, handing each connected socket (non-blocking, close-on-exec)
    /// to `adopt`, which owns it from then on. Blocks: run it on a thread of its own.
    /// - Parameter logger: where a failing `accept` is reported, once per episode.
    func run(logger: Logger, adopt: (CInt) -> Void) {
        let starts = state.withLockedValue { state -> Bool in
            guard case .idle = state else { return false }
            state = .accepting
            return true
        }
        guard starts else { return }
        var failing = false
        while waitForConnection(timeout: -1) {
            let socket = c_sockets_accept(listening)
            if socket >= 0 {
                if failing {
                    failing = false
                    logger.notice("Accepting connections again")
                }
                adopt(socket)
                continue
            }
            let error = errno
            switch error {
            case EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED, EPROTO, EPERM:
                // The connection went away before it was accepted, or nothing was there.
                continue
            default:
                if !failing {
                    failing = true
                    logger.error(
                        "Cannot accept connections; retrying every second",
                        metadata: ["error": "\(IOError(errnoCode: error, reason: "accept"))"])
                }
                _ = waitForConnection(timeout: Self.backoff, watchingListener: false)
            }
        }
        state.withLockedValue { state in
            closeDescriptors()
            state = .closed
        }
    }

    private func closeDescriptors() {
        Glibc.close(listening)
        Glibc.close(wakeUp.0)
        Glibc.close(wakeUp.1)
    }

    /// Waits until a connection may be accepted (`true`) or ``close()`` was called (`false`).
    /// - Parameters:
    ///   - timeout: milliseconds; -1 waits for ever.
    ///   - watch: `false` waits only for ``close()`` (the back-off).
    private func waitForConnection(timeout: CInt, watchingListener watch: Bool = true) -> Bool {
        var descriptors = [
            pollfd(fd: wakeUp.0, events: Int16(POLLIN), revents: 0),
            pollfd(fd: watch ? listening : -1, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            if state.withLockedValue({ if case .accepting = $0 { false } else { true } }) { return false }
            let ready = poll(&descriptors, nfds_t(descriptors.count), timeout)
            if ready < 0, errno == EINTR { continue }
            if descriptors[0].revents != 0 { return false }
            return true
        }
    }

    /// Stops accepting. Returns at once; the thread in ``run(logger:adopt:)`` returns soon
    /// after and closes the socket (or, not running, it is closed now).
    func close() {
        // Under the lock: the thread closes the descriptors under it too, so the wake-up
        // never goes to a number already closed and perhaps reused.
        state.withLockedValue { state in
            switch state {
            case .idle:
                closeDescriptors()
                state = .closed
            case .accepting:
                var byte: UInt8 = 1
                _ = write(wakeUp.1, &byte, 1)
                state = .closing
            case .closing, .closed:
                break
            }
        }
    }
}
