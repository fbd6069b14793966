/// A web origin, `scheme://host[:port]` (RFC 6454), in the one spelling two equal origins
/// share: scheme and host lower-cased, the scheme's default port left out. What a browser
/// sends in `Origin`, and what `WEB_ALLOWED_ORIGINS` lists.
public struct WebOrigin: Hashable, Sendable, CustomStringConvertible {
    /// The normalised spelling.
    public let text: String

    /// Parses `http://...` or `https://...` with a host and an optional port; a trailing `/`
    /// is allowed (people paste URLs), a path is not.
    public init?(_ origin: String) {
        let lowered = origin.lowercased()
        let scheme: String
        let defaultPort: String
        if lowered.hasPrefix("https://") {
            (scheme, defaultPort) = ("https", "443")
        } else if lowered.hasPrefix("http://") {
            (scheme, defaultPort) = ("http", "80")
        } else {
            return nil
        }
        var authority = lowered.dropFirst(scheme.count + 3)
        if authority.hasSuffix("/") { authority = authority.dropLast() }
        guard let parts = Self.split(authority) else { return nil }
        let port: Substring? = parts.port.flatMap { $0 == defaultPort ? nil : $0 }
        self.text = "\(scheme)://\(parts.host)" + (port.map { ":\($0)" } ?? "")
    }

    /// The page's own origin: the scheme it was served over and the `Host` the browser asked for.
    public init?(scheme: String, host: String) {
        self.init("\(scheme)://\(host)")
    }

    public var description: String { text }

    /// `host[:port]` with a bracketed IPv6 host; `nil` when empty or malformed.
    private static func split(_ authority: Substring) -> (host: Substring, port: Substring?)? {
        guard !authority.isEmpty, authority.allSatisfy(Self.isAuthorityCharacter) else { return nil }
        let host: Substring
        var rest: Substring
        if authority.first == "[" {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[...close]
            rest = authority[authority.index(after: close)...]
        } else {
            let colon = authority.firstIndex(of: ":") ?? authority.endIndex
            host = authority[..<colon]
            rest = authority[colon...]
        }
        guard !host.isEmpty else { return nil }
        guard !rest.isEmpty else { return (host, nil) }
        guard rest.first == ":" else { return nil }
        rest = rest.dropFirst()
        guard !rest.isEmpty, rest.count <= 5, rest.allSatisfy(\.isASCIIDigit), let number = Int(rest),
            number <= 65535
        else {
            return nil
        }
        return (host, rest)
    }

    private static func isAuthorityCharacter(_ character: Character) -> Bool {
        guard let ascii = character.asciiValue else { return false }
        switch ascii {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        default: return "-._~:[]".utf8.contains(ascii)
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { asciiValue.map { $0 >= 0x30 && $0 <= 0x39 } ?? false }
}
