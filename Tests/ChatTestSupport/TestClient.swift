import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// A real TCP client for tests: connects from its own loopback address, sends lines and
/// collects every line it receives for the test to read, with timeouts.
public final class TestClient: Sendable {
    public enum Failure: Error, CustomStringConvertible {
        case timedOut(waitingFor: String, received: [String])
        case closed(received: [String])

        public var description: String {
            switch self {
            case .timedOut(let waitingFor, let received):
                return "timed out waiting for \(waitingFor); unread lines: \(received)"
            case .closed(let received):
                return "connection closed; unread lines: \(received)"
            }
        }
    }

    public let channel: any Channel
    public let source: String
    let inbox: Inbox
    /// Whether lines go as text frames of a WebSocket (``connectWebSocket``) or as bytes.
    let isWebSocket: Bool

    public static let defaultTimeout: Duration = .seconds(10)

    init(channel: any Channel, source: String, inbox: Inbox, isWebSocket: Bool = false) {
        self.channel = channel
        self.source = source
        self.inbox = inbox
        self.isWebSocket = isWebSocket
    }

    /// How a TLS client checks the server: the CA it trusts and the name it expects.
    public struct TLS: Sendable {
        public var caFile: String
        public var serverName: String

        public init(caFile: String, serverName: String = "localhost") {
            self.caFile = caFile
            self.serverName = serverName
        }
    }

    /// Connects to the server from `source` (a loopback address such as 127.0.0.2).
    /// - Parameters:
    ///   - reading: `false` makes a client that never reads (a slow consumer).
    ///   - tls: speak TLS (NIOSSL) and verify the server this way.
    public static func connect(
        port: Int,
        from source: String,
        group: any EventLoopGroup,
        reading: Bool = true,
        receiveBufferSize: Int? = nil,
        tls: TLS? = nil
    ) async throws -> TestClient {
        let inbox = Inbox()
        let sslContext = try tls.map { tls in
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = .file(tls.caFile)
            return try NIOSSLContext(configuration: configuration)
        }
        var bootstrap = ClientBootstrap(group: group)
            .channelOption(.autoRead, value: reading)
            .bind(to: try SocketAddress(ipAddress: source, port: 0))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext, let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: sslContext, serverHostname: tls.serverName))
                    }
                    try channel.pipeline.syncOperations.addHandler(LineCollector(inbox: inbox))
                }
            }
        if let receiveBufferSize {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBufferSize))
        }
        let channel = try await bootstrap.connect(host: "127.0.0.1", port: port).get()
        return TestClient(channel: channel, source: source, inbox: inbox)
    }

    /// Stops reading and asks for far more than the kernel's buffers hold (the replies to
    /// 8000 `/help`, about 11 MB; loopback's autotuning lets the server's socket take about
    /// 4 MB), then waits until the server has stopped reading from this connection: the
    /// kernel's buffers are full, the server's own send queue for this client holds the
    /// rest, and a line the server writes to it now is not flushed. The connection (and a
    /// shutdown's drain) then lasts until the server gives up on it. Also returns when the
    /// server closed the connection (a `MAX_SENDQ_BYTES` low enough to disconnect it). Give
    /// the client a small receive buffer (`receiveBufferSize: 2048`), so that little of the
    /// output sits on its side.
    ///
    /// A fixed pause was not enough: on a loaded machine (or under ThreadSanitizer) the
    /// server had answered too few lines by then, the kernel took all of it, and a later
    /// line was flushed after all. The server's side of the connection, in `/proc/net/tcp`,
    /// shows when it stopped: input it leaves unread, output the kernel holds, and neither
    /// queue moving for a second. (A server loop busy elsewhere for that long looks the
    /// same; under ThreadSanitizer on a loaded machine that happened, see `.ci/run`.)
    public func stallWithAFullSendQueue(timeout: Duration = .seconds(60)) async throws {
        // Taken before the flood: a server with a low MAX_SENDQ_BYTES may close the
        // connection before the flood's send returns, and a closed channel has no addresses.
        guard let clientPort = channel.localAddress?.port, let serverPort = channel.remoteAddress?.port else {
            throw TestFailure("the connection has no addresses")
        }
        try await stopReading()
        let flood =
            isWebSocket
            ? (0..<8000).flatMap { _ in WebSocketWire.frame(.text, Array("/help".utf8)) }
            : Array(String(repeating: "/help\n", count: 8000).utf8)
        try await sendRaw(flood)
        var last: KernelSocketQueues?
        var unchangedSince = ContinuousClock.now
        let stalled = try await poll(every: .milliseconds(50), timeout: timeout) {
            guard let queues = KernelSocketQueues.of(localPort: serverPort, remotePort: clientPort) else { return true }
            if queues != last {
                last = queues
                unchangedSince = .now
                return false
            }
            return queues.receiveQueue > 0 && queues.sendQueue > 0 && .now - unchangedSince >= .seconds(1)
        }
        guard !stalled else { return }
        throw TestFailure(
            "the server kept reading from the stalled connection (last seen: \(String(describing: last)))")
    }

    public func send(_ line: String) async throws {
        if isWebSocket {
            try await sendRaw(WebSocketWire.frame(.text, Array(line.utf8)))
        } else {
            try await sendRaw(Array((line + "\n").utf8))
        }
    }

    public func sendRaw(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// The next line, waiting up to `timeout`.
    public func readLine(timeout: Duration = defaultTimeout) async throws -> String {
        try await readLines(1, timeout: timeout)[0]
    }

    /// The next `count` lines.
    public func readLines(_ count: Int, timeout: Duration = defaultTimeout) async throws -> [String] {
        try await wait(for: "\(count) line(s)", timeout: timeout) { state in
            guard state.lines.count >= count else { return nil }
            let lines = Array(state.lines.prefix(count))
            state.lines.removeFirst(count)
            return lines
        }
    }

    /// Reads lines until one equals `line`; returns the lines before it.
    @discardableResult
    public func readUntil(_ line: String, timeout: Duration = defaultTimeout) async throws -> [String] {
        try await wait(for: "'\(line)'", timeout: timeout) { state in
            guard let index = state.lines.firstIndex(of: line) else { return nil }
            let before = Array(state.lines[..<index])
            state.lines.removeFirst(index + 1)
            return before
        }
    }

    /// Every line that reaches this client before the server has handled all it was sent
    /// so far, proven by a round trip instead of a pause: a private message to a name nobody
    /// has, whose error comes back through the hub (in a cluster, through the log) and this
    /// client's shard, in order with everything else addressed to it. What another user
    /// did counts only once the server has acknowledged it to them (their echo or error).
    /// The client must be logged in, and the log reachable.
    public func linesUntilCaughtUp(timeout: Duration = defaultTimeout) async throws -> [String] {
        let marker = "zz_marker_\(Self.markers.next())"
        try await send("/msg \(marker) .")
        return try await readUntil("ERROR: User '\(marker)' is not online.", timeout: timeout)
    }

    private static let markers = Counter()

    /// What arrives within `duration`, for a client that cannot use
    /// ``linesUntilCaughtUp(timeout:)`` (not logged in, or its log is down): the pause
    /// stands for the absence of an event, which has no signal to wait on.
    public func linesArriving(within duration: Duration) async throws -> [String] {
        try await Task.sleep(for: duration)  // Proves silence where no round trip can.
        return inbox.state.withLockedValue { state in
            defer { state.lines.removeAll() }
            return state.lines
        }
    }

    /// Waits until the server closes the connection; returns the unread lines.
    @discardableResult
    public func waitForClose(timeout: Duration = defaultTimeout) async throws -> [String] {
        try await wait(for: "the connection to close", timeout: timeout, allowClosed: true) { state in
            guard state.isClosed else { return nil }
            defer { state.lines.removeAll() }
            return state.lines
        }
    }

    /// Stops reading from the socket: the client becomes a slow consumer.
    public func stopReading() async throws {
        try await channel.setOption(.autoRead, value: false).get()
    }

    /// Reads again after ``stopReading()``.
    public func resumeReading() async throws {
        try await channel.setOption(.autoRead, value: true).get()
        channel.read()
    }

    /// The ports of this connection: its own, and the server's.
    public var ports: (local: Int, remote: Int)? {
        guard let local = channel.localAddress?.port, let remote = channel.remoteAddress?.port else { return nil }
        return (local, remote)
    }

    public var isClosed: Bool { inbox.state.withLockedValue { $0.isClosed } }

    /// The first error the connection saw (a failed TLS handshake, say).
    public var error: String? { inbox.state.withLockedValue { $0.error } }

    public func close() async {
        try? await channel.close()
    }

    /// Waits until `take` returns a value, the connection closes, or time is up: woken by
    /// each change to the inbox (a line, the close), bounded by `timeout`.
    func wait<T: Sendable>(
        for what: String,
        timeout: Duration,
        allowClosed: Bool = false,
        _ take: @Sendable (inout Inbox.State) -> T?
    ) async throws -> T {
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        while true {
            let (value, closed, received, version) = inbox.state.withLockedValue { state in
                (take(&state), state.isClosed, state.lines, state.version)
            }
            if let value { return value }
            if closed && !allowClosed { throw Failure.closed(received: received) }
            guard NIODeadline.now() < deadline else { throw Failure.timedOut(waitingFor: what, received: received) }
            await inbox.change(after: version, notAfter: deadline, on: channel.eventLoop)
        }
    }

    final class Inbox: Sendable {
        struct State {
            var lines: [String] = []
            var partial: [UInt8] = []
            var isClosed = false
            var error: String?
            /// Counts changes, so a waiter knows whether one came since it looked.
            var version = 0
            var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
            /// Each waiter's deadline timer, cancelled when a change wakes it first.
            var timers: [Int: Scheduled<Void>] = [:]
            var nextWaiter = 0
            /// A WebSocket client's handshake answer: the status line and headers.
            var handshake: String?
            /// The code of the close frame the server sent, if it did.
            var closeCode: UInt16?
            /// Pings the server sent (each answered unless told otherwise).
            var pings = 0
        }
        let state = NIOLockedValueBox(State())

        /// The connection closed: waiters see it.
        func connectionClosed() {
            state.withLockedValue { $0.isClosed = true }
            changed()
        }

        /// The connection's first error, kept for the test to read.
        func connectionFailed(_ error: any Error) {
            state.withLockedValue { state in
                if state.error == nil { state.error = "\(error)" }
            }
        }

        /// Called (under no lock) after `state` changed: wakes every waiter.
        func changed() {
            let (waiters, timers) = state.withLockedValue { state in
                state.version += 1
                defer { (state.waiters, state.timers) = ([:], [:]) }
                return (Array(state.waiters.values), Array(state.timers.values))
            }
            for timer in timers { timer.cancel() }
            for waiter in waiters { waiter.resume() }
        }

        /// Returns once the inbox changed after `version`, or at `deadline`.
        func change(after version: Int, notAfter deadline: NIODeadline, on eventLoop: any EventLoop) async {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let waiter = state.withLockedValue { state -> Int? in
                    guard state.version == version else { return nil }
                    defer { state.nextWaiter += 1 }
                    state.waiters[state.nextWaiter] = continuation
                    return state.nextWaiter
                }
                guard let waiter else { return continuation.resume() }
                // Whichever comes first resumes it: a change, or this deadline.
                let timer = eventLoop.scheduleTask(deadline: deadline) { () -> Void in
                    let expired = self.state.withLockedValue { state in
                        state.timers[waiter] = nil
                        return state.waiters.removeValue(forKey: waiter)
                    }
                    expired?.resume()
                }
                let waiting = state.withLockedValue { state in
                    guard state.waiters[waiter] != nil else { return false }
                    state.timers[waiter] = timer
                    return true
                }
                if !waiting { timer.cancel() }
            }
        }
    }
}

/// Splits what the server sends into lines; every line the server sends ends with `\n`.
private final class LineCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let inbox: TestClient.Inbox

    init(inbox: TestClient.Inbox) { self.inbox = inbox }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        inbox.state.withLockedValue { state in
            for byte in buffer.readableBytesView {
                if byte == UInt8(ascii: "\n") {
                    state.lines.append(String(decoding: state.partial, as: UTF8.self))
                    state.partial.removeAll(keepingCapacity: true)
                } else {
                    state.partial.append(byte)
                }
            }
        }
        inbox.changed()
    }

    func channelInactive(context: ChannelHandlerContext) {
        inbox.connectionClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        inbox.connectionFailed(error)
        context.close(promise: nil)
    }
}
