/// Who the client is behind trusted reverse proxies, from `X-Forwarded-For`.
///
/// Each proxy appends the address it was connected from, so only the hops on the right,
/// written by proxies the server trusts, can be believed: the client is the right-most hop
/// that is not a trusted proxy. A peer that is not trusted is the client itself, whatever
/// it sends.
public enum ForwardedFor {
    /// - Parameters:
    ///   - peer: the address the connection came from.
    ///   - headerValues: every `X-Forwarded-For` line's value, in order (a proxy may add a
    ///     line of its own rather than extend the last).
    ///   - trusted: the proxies whose word is taken (`TRUSTED_PROXIES`).
    public static func client(peer: IPAddress, headerValues: [String], trusted: [IPNetwork]) -> IPAddress {
        func isTrusted(_ address: IPAddress) -> Bool { trusted.contains { $0.contains(address) } }
        var client = peer
        guard isTrusted(peer) else { return peer }
        let hops = headerValues.flatMap { $0.split(separator: ",") }
        for hop in hops.reversed() {
            // A hop that is not an address was not written by a trusted proxy: the one
            // before it (to the right) is as far as the chain can be believed.
            guard let address = Self.address(hop) else { break }
            client = address
            if !isTrusted(address) { break }
        }
        return client
    }

    /// An address as proxies write it: `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]`, or
    /// either with a port (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
    static func address(_ hop: Substring) -> IPAddress? {
        let text = hop.trimmingPrefix(while: { $0 == " " || $0 == "\t" })
        let trimmed = text.prefix { $0 != " " && $0 != "\t" }
        if trimmed.first == "[" {
            guard let close = trimmed.firstIndex(of: "]") else { return nil }
            return IPAddress(trimmed[trimmed.index(after: trimmed.startIndex)..<close])
        }
        if let address = IPAddress(trimmed) { return address }
        // IPv4 with a port: exactly one colon.
        let parts = trimmed.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        return IPAddress(parts[0]).flatMap { $0.isIPv4 ? $0 : nil }
    }
}
