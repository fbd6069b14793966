/// Splits a byte stream into lines at `\n` with a hard maximum length: the pure logic
/// behind the server's line decoder, kept free of I/O so it can be unit-tested and fuzzed.
///
/// An over-long line is reported once and its bytes are dropped as they arrive, up to and
/// including its `\n`; nothing beyond `maximumLineBytes` is ever kept.
public struct LineFramer: Sendable {
    public let maximumLineBytes: Int
    /// Dropping the rest of an over-long line until its newline.
    private var discarding = false

    public init(maximumLineBytes: Int) {
        precondition(maximumLineBytes > 0)
        self.maximumLineBytes = maximumLineBytes
    }

    /// What to do with the front of the unread bytes.
    public enum Step: Equatable, Sendable {
        /// A line: its text is the first `length` bytes (no `\r\n`); consume `consumed` bytes.
        case line(length: Int, consumed: Int)
        /// An over-long line: tell the client once; consume `consumed` bytes.
        case tooLong(consumed: Int)
        /// Drop `consumed` bytes (the tail of an over-long line) and look again.
        case skip(consumed: Int)
        /// Drop `consumed` bytes (possibly 0) and wait for more data.
        case needMoreData(consumed: Int)
    }

    public mutating func step<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Step {
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else {
            let count = bytes.count
            if discarding { return .needMoreData(consumed: count) }
            if count > maximumLineBytes {
                discarding = true
                return .tooLong(consumed: count)
            }
            return .needMoreData(consumed: 0)
        }
        let length = bytes.distance(from: bytes.startIndex, to: newline)
        if discarding {
            discarding = false
            return .skip(consumed: length + 1)
        }
        if length > maximumLineBytes { return .tooLong(consumed: length + 1) }
        let hasCR = length > 0 && bytes[bytes.index(newline, offsetBy: -1)] == UInt8(ascii: "\r")
        return .line(length: hasCR ? length - 1 : length, consumed: length + 1)
    }

    /// A line's text: telnet commands removed, then UTF-8 with invalid bytes replaced.
    public static func text<Bytes: Collection<UInt8>>(of bytes: Bytes) -> String {
        guard bytes.contains(0xFF) else { return String(decoding: bytes, as: UTF8.self) }
        return String(decoding: withoutTelnetCommands(bytes), as: UTF8.self)
    }

    /// Removes telnet IAC sequences (RFC 854): `IAC x`, `IAC WILL/WONT/DO/DONT option`, and
    /// subnegotiations `IAC SB ... IAC SE`. 0xFF never occurs in UTF-8, so no text is lost.
    static func withoutTelnetCommands<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var iterator = bytes.makeIterator()
        var inSubnegotiation = false
        while let byte = iterator.next() {
            guard byte == 0xFF else {
                if !inSubnegotiation { output.append(byte) }
                continue
            }
            guard let command = iterator.next() else { break }
            switch command {
            case 0xF0: inSubnegotiation = false  // SE
            case 0xFA: inSubnegotiation = true  // SB
            case 0xFB...0xFE: _ = iterator.next()  // WILL, WONT, DO, DONT + option
            default: break  // other commands, and IAC IAC (a data byte 255: not text)
            }
        }
        return output
    }
}
