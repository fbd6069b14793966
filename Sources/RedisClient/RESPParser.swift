import NIOCore

/// Reads RESP3 values from bytes as they arrive: a value split over many reads is read once
/// it is whole, and nothing is consumed until then. Defends itself against a server (or
/// something pretending to be one) that sends too deep, too long or malformed data.
public struct RESPParser: Sendable {
    /// What the parser refuses to read.
    public struct Limits: Sendable {
        /// The longest bulk string, bulk error or verbatim string (Redis's own cap: 512 MB).
        public var maximumBulkLength = 512 * 1024 * 1024
        /// The most elements in one aggregate (array, map, set, push).
        public var maximumAggregateCount = 1 << 24
        /// How deeply aggregates may nest.
        public var maximumDepth = 64
        /// The longest simple line (simple string, error, number).
        public var maximumLineLength = 64 * 1024

        public init() {}
    }

    public enum Error: Swift.Error, Equatable, Sendable {
        /// The bytes are not RESP3: the reason.
        case malformed(String)
        /// Over one of the ``Limits``.
        case tooLarge(String)
    }

    public let limits: Limits

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// The next whole value in `buffer`, consumed; `nil` (and `buffer` untouched) when it has
    /// not all arrived yet.
    public func next(from buffer: inout ByteBuffer) throws(Error) -> RESPValue? {
        var cursor = buffer
        guard let value = try read(&cursor, depth: 0) else { return nil }
        buffer = cursor
        return value
    }

    private func read(_ buffer: inout ByteBuffer, depth: Int) throws(Error) -> RESPValue? {
        guard let marker = buffer.readInteger(as: UInt8.self) else { return nil }
        switch marker {
        case UInt8(ascii: "+"):
            return try line(&buffer).map { .simpleString($0) }
        case UInt8(ascii: "-"):
            return try line(&buffer).map { .simpleError($0) }
        case UInt8(ascii: ":"):
            guard let text = try line(&buffer) else { return nil }
            guard let value = Int64(text) else { throw .malformed("integer '\(text)'") }
            return .integer(value)
        case UInt8(ascii: "_"):
            guard let text = try line(&buffer) else { return nil }
            guard text.isEmpty else { throw .malformed("null with content '\(text)'") }
            return .null
        case UInt8(ascii: "#"):
            guard let text = try line(&buffer) else { return nil }
            switch text {
            case "t": return .boolean(true)
            case "f": return .boolean(false)
            default: throw .malformed("boolean '\(text)'")
            }
        case UInt8(ascii: ","):
            guard let text = try line(&buffer) else { return nil }
            switch text.lowercased() {
            case "inf", "+inf": return .double(.infinity)
            case "-inf": return .double(-.infinity)
            case "nan": return .double(.nan)
            default:
                guard let value = Double(text) else { throw .malformed("double '\(text)'") }
                return .double(value)
            }
        case UInt8(ascii: "("):
            guard let text = try line(&buffer) else { return nil }
            let digits = text.hasPrefix("-") || text.hasPrefix("+") ? text.dropFirst() : Substring(text)
            guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else {
                throw .malformed("big number '\(text)'")
            }
            return .bigNumber(text)
        case UInt8(ascii: "$"):
            guard let bytes = try bulk(&buffer) else { return nil }
            return bytes.map { .bulkString($0) } ?? .null
        case UInt8(ascii: "!"):
            guard let bytes = try bulk(&buffer) else { return nil }
            guard let bytes else { throw .malformed("null bulk error") }
            return .bulkError(String(decoding: bytes, as: UTF8.self))
        case UInt8(ascii: "="):
            guard let bytes = try bulk(&buffer) else { return nil }
            guard let bytes, bytes.count >= 4, bytes[3] == UInt8(ascii: ":") else {
                throw .malformed("verbatim string without its format")
            }
            return .verbatimString(
                format: String(decoding: bytes[0..<3], as: UTF8.self),
                text: String(decoding: bytes[4...], as: UTF8.self))
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"):
            guard let count = try count(&buffer) else { return nil }
            guard count >= 0 else {
                guard marker == UInt8(ascii: "*"), count == -1 else { throw .malformed("negative count \(count)") }
                return .null
            }
            guard let elements = try elements(count, &buffer, depth: depth) else { return nil }
            switch marker {
            case UInt8(ascii: "*"): return .array(elements)
            case UInt8(ascii: "~"): return .set(elements)
            default: return .push(elements)
            }
        case UInt8(ascii: "%"), UInt8(ascii: "|"):
            guard let count = try count(&buffer) else { return nil }
            guard count >= 0 else { throw .malformed("negative count \(count)") }
            guard count <= limits.maximumAggregateCount / 2 else { throw .tooLarge("map of \(count) pairs") }
            guard let elements = try elements(count * 2, &buffer, depth: depth) else { return nil }
            let pairs = stride(from: 0, to: elements.count, by: 2).map {
                RESPValue.Pair(elements[$0], elements[$0 + 1])
            }
            guard marker == UInt8(ascii: "|") else { return .map(pairs) }
            // Attributes describe the value that follows; no command we send asks for them,
            // so they are read past and the value is returned.
            return try read(&buffer, depth: depth)
        default:
            throw .malformed("unknown type byte 0x\(String(marker, radix: 16))")
        }
    }

    private func elements(_ count: Int, _ buffer: inout ByteBuffer, depth: Int) throws(Error) -> [RESPValue]? {
        guard depth < limits.maximumDepth else { throw .tooLarge("nesting deeper than \(limits.maximumDepth)") }
        guard count <= limits.maximumAggregateCount else { throw .tooLarge("aggregate of \(count) elements") }
        var elements: [RESPValue] = []
        // Reserve only what the bytes at hand could hold: a count is a claim, not a promise.
        elements.reserveCapacity(min(count, buffer.readableBytes / 3))
        for _ in 0..<count {
            guard let element = try read(&buffer, depth: depth + 1) else { return nil }
            elements.append(element)
        }
        return elements
    }

    /// A line up to CRLF, without it; `nil` when the CRLF has not arrived.
    private func line(_ buffer: inout ByteBuffer) throws(Error) -> String? {
        let view = buffer.readableBytesView
        guard let cr = view.firstIndex(of: UInt8(ascii: "\r")) else {
            if view.count > limits.maximumLineLength { throw .tooLarge("line over \(limits.maximumLineLength) bytes") }
            return nil
        }
        let length = cr - view.startIndex
        guard length <= limits.maximumLineLength else { throw .tooLarge("line over \(limits.maximumLineLength) bytes") }
        guard view.count > length + 1 else { return nil }
        guard view[cr + 1] == UInt8(ascii: "\n") else { throw .malformed("CR without LF") }
        let text = buffer.readString(length: length)!
        buffer.moveReaderIndex(forwardBy: 2)
        return text
    }

    private func count(_ buffer: inout ByteBuffer) throws(Error) -> Int? {
        guard let text = try line(&buffer) else { return nil }
        guard let count = Int(text) else { throw .malformed("count '\(text)'") }
        return count
    }

    /// A length-prefixed payload; `.some(nil)` for RESP2's null (`-1`).
    private func bulk(_ buffer: inout ByteBuffer) throws(Error) -> [UInt8]?? {
        guard let length = try count(&buffer) else { return nil }
        if length == -1 { return .some(nil) }
        guard length >= 0 else { throw .malformed("negative length \(length)") }
        guard length <= limits.maximumBulkLength else { throw .tooLarge("bulk of \(length) bytes") }
        guard buffer.readableBytes >= length + 2 else { return nil }
        let bytes = buffer.readBytes(length: length)!
        guard buffer.readInteger(as: UInt8.self) == UInt8(ascii: "\r"),
            buffer.readInteger(as: UInt8.self) == UInt8(ascii: "\n")
        else { throw .malformed("bulk not followed by CRLF") }
        return .some(bytes)
    }
}
