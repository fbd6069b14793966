import NIOCore

/// One SMTP reply: a 3-digit code and its text lines (multi-line replies joined).
struct SMTPReply: Sendable, Equatable {
    let code: Int
    let lines: [String]

    var text: String { lines.joined(separator: " | ") }
    var isPositiveCompletion: Bool { (200..<300).contains(code) }
    var isPositiveIntermediate: Bool { (300..<400).contains(code) }
}

/// Assembles replies from `250-first`, `250-second`, `250 last` lines (RFC 5321 4.2).
///
/// Bounded: a server that sends over-long lines or endless continuations is a protocol
/// error, not a reason to buffer without limit.
struct SMTPReplyDecoder: ByteToMessageDecoder {
    typealias InboundOut = SMTPReply

    static let maximumLineLength = 2048
    static let maximumLines = 128

    private var pending: [String] = []
    private var pendingCode: Int?

    enum Failure: Error, CustomStringConvertible {
        case malformed(String)
        case tooLong

        var description: String {
            switch self {
            case .malformed(let line): return "malformed SMTP reply line '\(line.prefix(80))'"
            case .tooLong: return "SMTP reply too long"
            }
        }
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > Self.maximumLineLength { throw Failure.tooLong }
            return .needMoreData
        }
        let length = newline - buffer.readerIndex
        guard length <= Self.maximumLineLength else { throw Failure.tooLong }
        var line = String(decoding: buffer.readableBytesView.prefix(length), as: UTF8.self)
        buffer.moveReaderIndex(to: newline + 1)
        if line.hasSuffix("\r") { line.removeLast() }

        let bytes = Array(line.utf8)
        guard bytes.count >= 3, let code = Int(String(decoding: bytes[0..<3], as: UTF8.self)),
            (200...599).contains(code)
        else { throw Failure.malformed(line) }
        let separator = bytes.count > 3 ? bytes[3] : UInt8(ascii: " ")
        guard separator == UInt8(ascii: " ") || separator == UInt8(ascii: "-") else { throw Failure.malformed(line) }
        if let pendingCode, pendingCode != code { throw Failure.malformed(line) }
        pendingCode = code
        pending.append(bytes.count > 4 ? String(decoding: bytes[4...], as: UTF8.self) : "")
        guard pending.count <= Self.maximumLines else { throw Failure.tooLong }

        if separator == UInt8(ascii: " ") {
            context.fireChannelRead(Self.wrapInboundOut(SMTPReply(code: code, lines: pending)))
            pending = []
            pendingCode = nil
        }
        return .continue
    }

    mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws
        -> DecodingState
    {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
