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
/// read) bounds memory the way a chat server needs.
struct LineFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = InboundLine

    private var framer: LineFramer

    init(maximumLineBytes: Int) {
        self.framer = LineFramer(maximumLineBytes: maximumLineBytes)
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        switch framer.step(buffer.readableBytesView) {
        case .line(let length, let consumed):
            let line = LineFramer.text(of: buffer.readableBytesView.prefix(length))
            buffer.moveReaderIndex(forwardBy: consumed)
            context.fireChannelRead(Self.wrapInboundOut(.line(line)))
            return .continue
        case .tooLong(let consumed):
            buffer.moveReaderIndex(forwardBy: consumed)
            context.fireChannelRead(Self.wrapInboundOut(.tooLong))
            return .continue
        case .skip(let consumed):
            buffer.moveReaderIndex(forwardBy: consumed)
            return .continue
        case .needMoreData(let consumed):
            buffer.moveReaderIndex(forwardBy: consumed)
            return .needMoreData
        }
    }

    mutating func decodeLast(
        context: ChannelHandlerContext,
        buffer: inout ByteBuffer,
        seenEOF: Bool
    ) throws -> DecodingState {
        // Complete lines still count; a half line at the end of the stream does not.
        while try decode(context: context, buffer: &buffer) == .continue {}
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }
}
