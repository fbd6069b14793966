/// A syntactically valid e-mail address, as users type it at the login prompt.
///
/// The rules are deliberately strict (local@domain.tld, printable ASCII, bounded length):
/// the address ends up in a mail header and an SMTP command, so nothing that could break
/// either may pass.
public struct EmailAddress: Hashable, Sendable, CustomStringConvertible {
    /// The address as typed (case kept, for the mail's `To:`).
    public let value: String
    /// The address lower-cased: the key for per-address state (codes, throttles).
    public let key: String

    public static let maximumLength = 254
    static let maximumLocalPartLength = 64

    public init?(_ input: some StringProtocol) {
        let utf8 = Array(input.utf8)
        guard utf8.count >= 6, utf8.count <= Self.maximumLength else { return nil }
        guard let at = utf8.firstIndex(of: UInt8(ascii: "@")), utf8.lastIndex(of: UInt8(ascii: "@")) == at else {
            return nil
        }
        let local = utf8[..<at]
        let domain = utf8[(at + 1)...]
        guard Self.isValidLocalPart(local), Self.isValidDomain(domain) else { return nil }
        self.value = String(decoding: utf8, as: UTF8.self)
        self.key = value.lowercased()
    }

    public var description: String { value }

    private static func isValidLocalPart(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard !bytes.isEmpty, bytes.count <= maximumLocalPartLength else { return false }
        guard bytes.first != UInt8(ascii: "."), bytes.last != UInt8(ascii: ".") else { return false }
        var previous: UInt8 = 0
        for byte in bytes {
            guard isLocalPartByte(byte) else { return false }
            if byte == UInt8(ascii: "."), previous == UInt8(ascii: ".") { return false }
            previous = byte
        }
        return true
    }

    /// RFC 5322 `atext` plus `.`, without the characters that are legal but only ever
    /// seen in attacks on naive parsers.
    private static func isLocalPartByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "'"),
            UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "*"), UInt8(ascii: "="), UInt8(ascii: "?"), UInt8(ascii: "^"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    private static func isValidDomain(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard bytes.count >= 4, bytes.count <= 253 else { return false }
        let labels = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard labels.count >= 2 else { return false }
        for label in labels {
            guard !label.isEmpty, label.count <= 63 else { return false }
            guard label.first != UInt8(ascii: "-"), label.last != UInt8(ascii: "-") else { return false }
            for byte in label {
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"):
                    continue
                default:
                    return false
                }
            }
        }
        // The top-level domain is alphabetic and at least two letters long.
        let tld = labels.last!
        return tld.count >= 2 && tld.allSatisfy { ($0 | 0x20) >= UInt8(ascii: "a") && ($0 | 0x20) <= UInt8(ascii: "z") }
    }
}
