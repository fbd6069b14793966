import NIOCore

/// `--websocket`: the benchmark's clients speak to the server's web listener as a browser
/// does. Sends the handshake for `/ws` when the connection opens, then turns each text frame
/// the server sends into a line (`text\n`) for ``BenchClient`` and each line it writes into
/// a masked text frame, so the client itself is the same as over TCP.
final class WebSocketFraming: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let host: String
    private var upgraded = false
    /// What arrived and is not yet a whole frame (or, before the upgrade, the answer).
    private var pending: ByteBuffer?
    private var maskCounter: UInt32 = 0x9E37_79B9

    init(host: String) {
        self.host = host
    }

    func channelActive(context: ChannelHandlerContext) {
        let request =
            "GET /ws HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: Y2hhdC1iZW5jaC1jbGllbnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n"
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: request)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if pending == nil {
            pending = incoming
        } else {
            pending!.writeBuffer(&incoming)
        }
        if !upgraded {
            guard let end = pending!.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) else { return }
            let head = pending!.readString(length: end.upperBound - pending!.readerIndex) ?? ""
            guard head.hasPrefix("HTTP/1.1 101") else {
                context.fireErrorCaught(BenchError.closed("the web listener refused the handshake: \(head)"))
                return context.close(promise: nil)
            }
            upgraded = true
        }
        var lines = context.channel.allocator.buffer(capacity: pending!.readableBytes)
        while let payload = nextFrame() {
            var payload = payload
            lines.writeBuffer(&payload)
            lines.writeInteger(UInt8(ascii: "\n"))
        }
        if pending!.readableBytes == 0 { pending = nil } else { pending!.discardReadBytes() }
        if lines.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(lines)) }
    }

    /// The payload of the next whole text frame (other frames are skipped), or `nil`.
    private func nextFrame() -> ByteBuffer? {
        while var buffer = pending, buffer.readableBytes >= 2 {
            let first = buffer.readInteger(as: UInt8.self)!
            var length = Int(buffer.readInteger(as: UInt8.self)! & 0x7F)
            if length == 126 {
                guard let extended = buffer.readInteger(as: UInt16.self) else { return nil }
                length = Int(extended)
            } else if length == 127 {
                guard let extended = buffer.readInteger(as: UInt64.self) else { return nil }
                length = Int(extended)
            }
            guard let payload = buffer.readSlice(length: length) else { return nil }
            pending = buffer
            if first & 0x0F == 1 { return payload }
        }
        return nil
    }

    /// Each line becomes one masked text frame.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let lines = unwrapOutboundIn(data)
        var frames = context.channel.allocator.buffer(capacity: lines.readableBytes + 16)
        for line in lines.readableBytesView.split(separator: UInt8(ascii: "\n")) {
            frames.writeInteger(UInt8(0x81))
            if line.count < 126 {
                frames.writeInteger(UInt8(0x80 | line.count))
            } else {
                frames.writeInteger(UInt8(0x80 | 126))
                frames.writeInteger(UInt16(line.count))
            }
            // A cheap changing key: the mask is there because the protocol asks for it.
            maskCounter = maskCounter &* 1_664_525 &+ 1_013_904_223
            let key = withUnsafeBytes(of: maskCounter.bigEndian) { Array($0) }
            frames.writeBytes(key)
            for (offset, byte) in line.enumerated() { frames.writeInteger(byte ^ key[offset & 3]) }
        }
        context.write(wrapOutboundOut(frames), promise: promise)
    }
}

@available(*, unavailable)
extension WebSocketFraming: Sendable {}
