/// One value of the Redis serialization protocol, version 3 (RESP3), as a server sends it.
/// RESP2's null bulk string (`$-1`) and null array (`*-1`) read as ``null``.
public enum RESPValue: Sendable, Hashable {
    /// `+OK`
    case simpleString(String)
    /// `-ERR message`: the server refused the command.
    case simpleError(String)
    /// `:42`
    case integer(Int64)
    /// `$5\r\nhello`: binary-safe bytes.
    case bulkString([UInt8])
    /// `_`, `$-1`, `*-1`
    case null
    /// `#t`, `#f`
    case boolean(Bool)
    /// `,3.14`, `,inf`, `,-inf`, `,nan`
    case double(Double)
    /// `(3492890328409238509324850943850943825024385`: kept as its digits.
    case bigNumber(String)
    /// `!21\r\nSYNTAX invalid syntax`
    case bulkError(String)
    /// `=15\r\ntxt:Some string`: the format (three letters) and the text.
    case verbatimString(format: String, text: String)
    /// `*2 ...`
    case array([RESPValue])
    /// `%2 ...`: key-value pairs, in the order sent.
    case map([Pair])
    /// `~2 ...`
    case set([RESPValue])
    /// `>3 ...`: out-of-band data (a subscription's message, an invalidation), not a reply.
    case push([RESPValue])

    public struct Pair: Sendable, Hashable {
        public var key: RESPValue
        public var value: RESPValue

        public init(_ key: RESPValue, _ value: RESPValue) {
            self.key = key
            self.value = value
        }
    }

    /// The text of a string-like value (simple, bulk or verbatim string).
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let bytes): String(decoding: bytes, as: UTF8.self)
        case .verbatimString(_, let text): text
        default: nil
        }
    }

    /// The error text of an error reply (simple or bulk).
    public var error: String? {
        switch self {
        case .simpleError(let text), .bulkError(let text): text
        default: nil
        }
    }

    /// A bulk string of the text's UTF-8 bytes.
    public static func bulk(_ text: String) -> RESPValue { .bulkString(Array(text.utf8)) }
}
