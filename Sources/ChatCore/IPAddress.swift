/// An IPv4 or IPv6 address as its bytes (4 or 16), parsed from and printed as text without
/// any system call, so that untrusted input (a PROXY protocol header) is read by pure code.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6, in network order.
    public let bytes: [UInt8]

    /// - Parameter bytes: 4 (IPv4) or 16 (IPv6) bytes.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = Array(bytes)
    }

    /// Parses dotted IPv4 (`192.0.2.1`) or IPv6 text (`2001:db8::1`, `::ffff:192.0.2.1`).
    public init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        if let v4 = Self.parseIPv4(utf8[...]) {
            bytes = v4
        } else if let v6 = Self.parseIPv6(utf8[...]) {
            bytes = v6
        } else {
            return nil
        }
    }

    public var isIPv4: Bool { bytes.count == 4 }

    /// For an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), the IPv4 address it carries.
    public var mappedIPv4: IPAddress? {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF
        else { return nil }
        return IPAddress(bytes: bytes[12...])
    }

    /// Dotted IPv4; IPv6 as RFC 5952 recommends (lower case, the longest run of two or more
    /// zero groups as `::`, the first of equal runs).
    public var description: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        if let v4 = mappedIPv4 { return "::ffff:\(v4)" }
        let groups = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        var bestStart = -1
        var bestLength = 1
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else {
                index += 1
                continue
            }
            var end = index
            while end < 8 && groups[end] == 0 { end += 1 }
            if end - index > bestLength {
                bestStart = index
                bestLength = end - index
            }
            index = end
        }
        func hex(_ range: Range<Int>) -> String {
            groups[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        guard bestStart >= 0 else { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }

    /// `2001:db8:1:2::/64` for any IPv6 address in that /64: the unit per-IP limits count,
    /// since an IPv6 host usually owns a whole /64.
    public var prefix64: String {
        let groups = stride(from: 0, to: 8, by: 2).map { index in
            String(UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1]), radix: 16)
        }
        return groups.joined(separator: ":") + "::/64"
    }

    // MARK: Parsing

    private static func parseIPv4(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        let parts = text.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var result: [UInt8] = []
        result.reserveCapacity(4)
        for part in parts {
            // 1 to 3 digits, no leading zero (a leading zero means octal to some parsers).
            guard (1...3).contains(part.count), part.allSatisfy(isDigit),
                part.count == 1 || part.first != UInt8(ascii: "0")
            else { return nil }
            let value = part.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            guard value <= 255 else { return nil }
            result.append(UInt8(value))
        }
        return result
    }

    private static func parseIPv6(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        guard text.count >= 2, text.count <= 45 else { return nil }
        let colon = UInt8(ascii: ":")
        // Split at "::" (at most once) into the groups before and after the gap.
        var head = text
        var tail: ArraySlice<UInt8>? = nil
        if let gap = text.indices.first(where: { $0 + 1 < text.endIndex && text[$0] == colon && text[$0 + 1] == colon })
        {
            head = text[text.startIndex..<gap]
            tail = text[(gap + 2)...]
            if let rest = tail,
                rest.indices.contains(where: { $0 + 1 < rest.endIndex && rest[$0] == colon && rest[$0 + 1] == colon })
            {
                return nil
            }
        }
        guard var before = groups(head, allowIPv4: tail == nil) else { return nil }
        var after: [UInt8] = []
        if let tail {
            guard let parsed = groups(tail, allowIPv4: true) else { return nil }
            after = parsed
        }
        if tail == nil {
            return before.count == 16 ? before : nil
        }
        // The gap stands for at least one zero group.
        guard before.count + after.count <= 14 else { return nil }
        before.append(contentsOf: [UInt8](repeating: 0, count: 16 - before.count - after.count))
        return before + after
    }

    /// The bytes of `:`-separated hex groups, the last of which may be dotted IPv4.
    private static func groups(_ text: ArraySlice<UInt8>, allowIPv4: Bool) -> [UInt8]? {
        if text.isEmpty { return [] }
        let parts = text.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        var result: [UInt8] = []
        for (index, part) in parts.enumerated() {
            if index == parts.count - 1, allowIPv4, part.contains(UInt8(ascii: ".")) {
                guard let v4 = parseIPv4(part) else { return nil }
                result.append(contentsOf: v4)
                continue
            }
            guard (1...4).contains(part.count) else { return nil }
            var value: UInt16 = 0
            for byte in part {
                guard let digit = hexValue(byte) else { return nil }
                value = value << 4 | UInt16(digit)
            }
            result.append(UInt8(value >> 8))
            result.append(UInt8(value & 0xFF))
        }
        return result.count <= 16 ? result : nil
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
