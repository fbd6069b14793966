/// The PROXY protocol header (HAProxy's specification, versions 1 and 2) that a load
/// balancer sends first on each connection, naming the real client.
///
/// Pure: ``parse(_:)`` looks at the bytes received so far and says whether they hold a whole
/// header, need more, or cannot be one. It reads at most ``maximumLength`` bytes, so a
/// connection that sends garbage costs little.
public enum ProxyHeader: Equatable, Sendable {
    /// A proxied TCP connection from `source` (the real client).
    case proxied(source: IPAddress, sourcePort: UInt16)
    /// The proxy does not say who the client is (v1 `UNKNOWN`; v2 with an unspecified,
    /// UNIX or datagram family): the connection's own peer stands for the client.
    case unknown
    /// v2 `LOCAL`: the proxy's own connection, such as a health check; not a client.
    case local

    /// What the bytes so far amount to.
    public enum ParseResult: Equatable, Sendable {
        /// A prefix of a valid header: wait for more bytes.
        case incomplete
        /// A whole header of `length` bytes; whatever follows is the client's.
        case complete(ProxyHeader, length: Int)
        /// Not a PROXY header (or a malformed one).
        case invalid(String)
    }

    /// The longest version 1 header, `\r\n` included (the specification's bound).
    public static let v1MaximumLength = 107
    /// The longest version 2 header accepted: the 16-byte preamble and up to 2 KiB of
    /// addresses and TLVs (HAProxy's own TLVs are far smaller).
    public static let maximumLength = 16 + 2048

    public static let v1Prefix = Array("PROXY ".utf8)
    public static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    public static func parse(_ bytes: some Collection<UInt8>) -> ParseResult {
        let bytes = Array(bytes.prefix(maximumLength))
        if bytes.starts(with: v2Signature) { return parseV2(bytes) }
        if bytes.starts(with: v1Prefix) { return parseV1(bytes) }
        if v2Signature.starts(with: bytes) || v1Prefix.starts(with: bytes) { return .incomplete }
        return .invalid("not a PROXY protocol header")
    }

    // MARK: Version 1: "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n"

    private static func parseV1(_ bytes: [UInt8]) -> ParseResult {
        let window = bytes.prefix(v1MaximumLength)
        guard let newline = window.firstIndex(of: UInt8(ascii: "\n")) else {
            return bytes.count >= v1MaximumLength ? .invalid("version 1 header over 107 bytes") : .incomplete
        }
        guard newline > 0, bytes[newline - 1] == UInt8(ascii: "\r") else {
            return .invalid("version 1 header without CRLF")
        }
        let line = bytes[v1Prefix.count..<(newline - 1)]
        let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        let length = newline + 1
        guard let family = fields.first else { return .invalid("version 1 header without a protocol") }
        if family.elementsEqual("UNKNOWN".utf8) { return .complete(.unknown, length: length) }
        let isV4 = family.elementsEqual("TCP4".utf8)
        guard isV4 || family.elementsEqual("TCP6".utf8) else {
            return .invalid("version 1 protocol is not TCP4, TCP6 or UNKNOWN")
        }
        guard fields.count == 5 else { return .invalid("version 1 header needs 2 addresses and 2 ports") }
        guard let source = IPAddress(String(decoding: fields[1], as: UTF8.self)),
            let destination = IPAddress(String(decoding: fields[2], as: UTF8.self)),
            source.isIPv4 == isV4, destination.isIPv4 == isV4
        else { return .invalid("version 1 address does not match its protocol") }
        guard let sourcePort = port(fields[3]), port(fields[4]) != nil else {
            return .invalid("version 1 port is not a number from 0 to 65535")
        }
        return .complete(.proxied(source: source, sourcePort: sourcePort), length: length)
    }

    private static func port(_ text: ArraySlice<UInt8>) -> UInt16? {
        guard (1...5).contains(text.count), text.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            text.count == 1 || text.first != UInt8(ascii: "0")
        else { return nil }
        let value = text.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        return value <= 65535 ? UInt16(value) : nil
    }

    // MARK: Version 2: a 16-byte binary preamble, addresses, TLVs

    private static func parseV2(_ bytes: [UInt8]) -> ParseResult {
        guard bytes.count >= 16 else { return .incomplete }
        let versionAndCommand = bytes[12]
        guard versionAndCommand >> 4 == 2 else { return .invalid("version 2 header of another version") }
        let addressLength = Int(bytes[14]) << 8 | Int(bytes[15])
        let length = 16 + addressLength
        guard length <= maximumLength else { return .invalid("version 2 header over \(maximumLength) bytes") }
        guard bytes.count >= length else { return .incomplete }
        switch versionAndCommand & 0x0F {
        case 0x0:
            return .complete(.local, length: length)
        case 0x1:
            break
        default:
            return .invalid("version 2 command is neither LOCAL nor PROXY")
        }
        let family = bytes[13] >> 4
        let transport = bytes[13] & 0x0F
        // Only TCP over IPv4 or IPv6 names a client this server can use.
        guard transport == 0x1, family == 0x1 || family == 0x2 else {
            guard family <= 0x3, transport <= 0x2 else { return .invalid("version 2 family is not defined") }
            return .complete(.unknown, length: length)
        }
        let addressBytes = family == 0x1 ? 4 : 16
        guard addressLength >= 2 * addressBytes + 4 else { return .invalid("version 2 address block is too short") }
        guard let source = IPAddress(bytes: bytes[16..<(16 + addressBytes)]) else {
            return .invalid("version 2 address is malformed")
        }
        let portOffset = 16 + 2 * addressBytes
        let sourcePort = UInt16(bytes[portOffset]) << 8 | UInt16(bytes[portOffset + 1])
        // TLVs, if any, fill the rest of the block; nothing here needs them.
        return .complete(.proxied(source: source, sourcePort: sourcePort), length: length)
    }
}
