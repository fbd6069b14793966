import NIOCore

/// What the framing layer hands to the connection handler.
enum InboundLine: Equatable, Sendable {
    /// One line, without its `\n` or `\r\n`, decoded as UTF-8 (invalid bytes replaced).
    case line(String)
    /// A line longer than the maximum arrived and was discarded.
    case tooLong
}

/// Splits the byte stream at `\n` with a hard maximum line length.
///
/// Neither NIO-extras' `LineBasedFrameDecoder` (no maximum) nor
/// `ByteToMessageHandler(maximumBufferSize:)` (misses an over-long line that arrives in one
/// read) bounds memory the way a chat server needs. Here an over-long line is reported
/// once, then its bytes are dropped as they arrive, up to and including its `\n`; nothing
/// beyond `maximumLineBytes` is ever kept.
struct LineFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = InboundLine

    let maximumLineBytes: Int
    /// Dropping the rest of an over-long line until its newline.
    private var discarding = false

    init(maximumLineBytes: Int) {
        precondition(maximumLineBytes > 0)
        self.maximumLineBytes = maximumLineBytes
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > maximumLineBytes || (discarding && buffer.readableBytes > 0) {
                buffer.moveReaderIndex(to: buffer.writerIndex)
                if !discarding {
                    discarding = true
                    context.fireChannelRead(Self.wrapInboundOut(.tooLong))
                }
            }
            return .needMoreData
        }
        var length = newline - buffer.readerIndex
        if discarding {
            buffer.moveReaderIndex(forwardBy: length + 1)
            discarding = false
            return .continue
        }
        if length > maximumLineBytes {
            buffer.moveReaderIndex(forwardBy: length + 1)
            context.fireChannelRead(Self.wrapInboundOut(.tooLong))
            return .continue
        }
        if length > 0, buffer.getInteger(at: newline - 1, as: UInt8.self) == UInt8(ascii: "\r") {
            length -= 1
        }
        let line = String(decoding: buffer.readableBytesView.prefix(length), as: UTF8.self)
        buffer.moveReaderIndex(to: newline + 1)
        context.fireChannelRead(Self.wrapInboundOut(.line(line)))
        return .continue
    }

    mutating func decodeLast(
        context: ChannelHandlerContext,
        buffer: inout ByteBuffer,
        seenEOF: Bool
    ) throws -> DecodingState {
        // A half line at the end of the stream is not a line: drop it.
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }
}
