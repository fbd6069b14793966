import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// RFC 6455 frames as a test client writes them: masked (as every client must) unless a
/// test breaks that rule on purpose.
public enum WebSocketWire {
    public enum Opcode: UInt8, Sendable {
        case continuation = 0
        case text = 1
        case binary = 2
        case close = 8
        case ping = 9
        case pong = 10
    }

    public static func frame(
        _ opcode: Opcode, _ payload: [UInt8], fin: Bool = true, masked: Bool = true, rsv1: Bool = false
    ) -> [UInt8] {
        var bytes: [UInt8] = [(fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode.rawValue]
        let maskBit: UInt8 = masked ? 0x80 : 0
        switch payload.count {
        case ..<126:
            bytes.append(maskBit | UInt8(payload.count))
        case ..<65536:
            bytes.append(maskBit | 126)
            bytes += [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        default:
            bytes.append(maskBit | 127)
            bytes += (0..<8).reversed().map { UInt8((payload.count >> ($0 * 8)) & 0xFF) }
        }
        guard masked else { return bytes + payload }
        let key: [UInt8] = (0..<4).map { _ in UInt8.random(in: 0...255) }
        bytes += key
        bytes += payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
        return bytes
    }

    /// A close frame's payload: the code, then an optional reason.
    public static func closePayload(_ code: UInt16) -> [UInt8] {
        [UInt8(code >> 8), UInt8(code & 0xFF)]
    }
}

extension TestClient {
    /// Connects to a web listener and asks for `/ws` as a WebSocket, from `source` (a
    /// loopback address), with these extra request headers (`Origin`, `X-Forwarded-For`).
    /// Returns once the server answered the handshake: ``handshakeStatus`` says how
    /// (101 when the socket is open; then lines come and go as text frames).
    /// - Parameters:
    ///   - answersPings: `false` makes a client that never answers a ping.
    ///   - proxyHeader: a PROXY protocol header to send first, as a load balancer would.
    public static func connectWebSocket(
        port: Int, from source: String, group: any EventLoopGroup, path: String = "/ws",
        headers: [(String, String)] = [], answersPings: Bool = true, receiveBufferSize: Int? = nil, tls: TLS? = nil,
        proxyHeader: String? = nil
    ) async throws -> TestClient {
        let inbox = Inbox()
        let sslContext = try tls.map { tls in
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = .file(tls.caFile)
            return try NIOSSLContext(configuration: configuration)
        }
        var bootstrap = ClientBootstrap(group: group)
            .bind(to: try SocketAddress(ipAddress: source, port: 0))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext, let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: sslContext, serverHostname: tls.serverName))
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        WebSocketCollector(inbox: inbox, answersPings: answersPings))
                }
            }
        if let receiveBufferSize {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBufferSize))
        }
        let channel = try await bootstrap.connect(host: "127.0.0.1", port: port).get()
        let client = TestClient(channel: channel, source: source, inbox: inbox, isWebSocket: true)
        var request = (proxyHeader ?? "") + "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\n"
        request += "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        request += "Sec-WebSocket-Version: 13\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        try await client.sendRaw(Array((request + "\r\n").utf8))
        _ = try await client.wait(for: "the handshake's answer", timeout: defaultTimeout, allowClosed: true) { state in
            state.handshake
        }
        return client
    }

    /// The status code of the handshake's answer (101: upgraded).
    public var handshakeStatus: Int? {
        inbox.state.withLockedValue { state in
            state.handshake.flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Int($0) }
        }
    }

    /// The handshake's answer, status line and headers.
    public var handshakeResponse: String? { inbox.state.withLockedValue { $0.handshake } }

    /// Waits until the server closes the connection; returns the code of the close frame it
    /// sent first (`nil`: it closed without one).
    public func waitForCloseCode(timeout: Duration = defaultTimeout) async throws -> UInt16? {
        _ = try await waitForClose(timeout: timeout)
        return inbox.state.withLockedValue { $0.closeCode }
    }

    /// Pings the server sent so far.
    public var pingsReceived: Int { inbox.state.withLockedValue { $0.pings } }
}

/// Reads the handshake's answer, then the server's frames: each text frame is a line.
private final class WebSocketCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let inbox: TestClient.Inbox
    let answersPings: Bool
    private var pending: [UInt8] = []
    private var upgraded = false

    init(inbox: TestClient.Inbox, answersPings: Bool) {
        self.inbox = inbox
        self.answersPings = answersPings
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        pending += unwrapInboundIn(data).readableBytesView
        if !upgraded {
            guard let end = pending.firstRange(of: Array("\r\n\r\n".utf8)) else { return }
            let head = String(decoding: pending[..<end.lowerBound], as: UTF8.self)
            pending.removeSubrange(..<end.upperBound)
            upgraded = head.hasPrefix("HTTP/1.1 101")
            inbox.state.withLockedValue { $0.handshake = head }
            inbox.changed()
            if !upgraded { pending.removeAll() }
        }
        while upgraded, let frame = nextFrame() {
            switch frame.opcode {
            case 1:
                inbox.state.withLockedValue { $0.lines.append(String(decoding: frame.payload, as: UTF8.self)) }
            case 8:
                let code = frame.payload.count >= 2 ? UInt16(frame.payload[0]) << 8 | UInt16(frame.payload[1]) : nil
                inbox.state.withLockedValue { state in
                    if state.closeCode == nil { state.closeCode = code }
                }
            case 9:
                inbox.state.withLockedValue { $0.pings += 1 }
                if answersPings {
                    let pong = WebSocketWire.frame(.pong, frame.payload)
                    context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: pong)), promise: nil)
                }
            default:
                break
            }
            inbox.changed()
        }
    }

    /// The next whole frame from the server (never masked), or `nil` until more arrives.
    private func nextFrame() -> (opcode: UInt8, payload: [UInt8])? {
        guard pending.count >= 2 else { return nil }
        var length = Int(pending[1] & 0x7F)
        var offset = 2
        if length == 126 {
            guard pending.count >= 4 else { return nil }
            length = Int(pending[2]) << 8 | Int(pending[3])
            offset = 4
        } else if length == 127 {
            guard pending.count >= 10 else { return nil }
            length = pending[2..<10].reduce(0) { $0 << 8 | Int($1) }
            offset = 10
        }
        guard pending.count >= offset + length else { return nil }
        let frame = (pending[0] & 0x0F, Array(pending[offset..<(offset + length)]))
        pending.removeSubrange(..<(offset + length))
        return frame
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
