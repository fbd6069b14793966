import ChatCore
import NIOCore

/// What the framing layer hands to the connection handler.
enum InboundLine: Equatable, Sendable {
    /// One line, without its `\n` or `\r\n`: telnet commands removed, decoded as UTF-8
    /// (invalid bytes replaced).
    case line(String)
    /// A line longer than the maximum arrived and was discarded.
    case tooLong
}

/// Splits the byte stream at `\n` with a hard maximum line length (``LineFramer``).
///
/// Neither NIO-extras' `LineBasedFrameDecoder` (no maximum) nor
/// `ByteToMessageHandler(maximumBufferSize:)` (misses an over-long line that arrives in one
/// read) bounds memory the way a chat server needs. A handler of its own rather than a
/// `ByteToMessageDecoder`: `ByteToMessageHandler` keeps an empty cumulation buffer and a
/// queue for every connection, about 390 bytes of each idle connection's 4.7 KiB
/// (BENCHMARKS.md); this one keeps bytes only while a line is unfinished.
final class LineFrameHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = InboundLine

    private var framer: LineFramer
    /// The start of an unfinished line (and, while lines are handed on, bytes that arrived
    /// meanwhile); `nil` between whole lines, which is most of the time.
    private var unframed: ByteBuffer?
    /// Lines are being handed on: a read that comes in meanwhile (a handler further on
    /// made the channel read) only adds its bytes, so lines keep their order.
    private var isFraming = false

    init(maximumLineBytes: Int) {
        self.framer = LineFramer(maximumLineBytes: maximumLineBytes)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if unframed == nil {
            unframed = bytes
        } else {
            unframed!.writeBuffer(&bytes)
        }
        guard !isFraming else { return }
        isFraming = true
        defer { isFraming = false }
        while var input = unframed {
            unframed = nil
            frame(&input, context: context)
            guard input.readableBytes > 0 || unframed != nil else { return }
            if var arrived = unframed {
                // Bytes came in while lines were handed on: they follow the rest.
                input.writeBuffer(&arrived)
                unframed = input
                continue
            }
            // Only the unfinished line is kept, not the whole read's buffer (up to 16 KiB).
            var rest = context.channel.allocator.buffer(capacity: input.readableBytes)
            rest.writeBuffer(&input)
            unframed = rest
            return
        }
    }

    /// Hands on every whole line in `input` and consumes it, leaving an unfinished line.
    private func frame(_ input: inout ByteBuffer, context: ChannelHandlerContext) {
        while true {
            switch framer.step(input.readableBytesView) {
            case .line(let length, let consumed):
                let line = LineFramer.text(of: input.readableBytesView.prefix(length))
                input.moveReaderIndex(forwardBy: consumed)
                context.fireChannelRead(wrapInboundOut(.line(line)))
            case .tooLong(let consumed):
                input.moveReaderIndex(forwardBy: consumed)
                context.fireChannelRead(wrapInboundOut(.tooLong))
            case .skip(let consumed):
                input.moveReaderIndex(forwardBy: consumed)
            case .needMoreData(let consumed):
                input.moveReaderIndex(forwardBy: consumed)
                return
            }
        }
    }

    /// A half line at the end of the stream is not a line.
    func channelInactive(context: ChannelHandlerContext) {
        unframed = nil
        context.fireChannelInactive()
    }
}
