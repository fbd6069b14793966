/// An address block in CIDR notation (`10.0.0.0/8`, `::1/128`), e.g. the proxies trusted to
/// name the client in a PROXY protocol header.
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    /// Parses `address/length`; an address alone is a block of one (`/32` or `/128`).
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { return nil }
        let bits = address.bytes.count * 8
        var length = bits
        if parts.count == 2 {
            guard parts[1].allSatisfy({ $0 >= "0" && $0 <= "9" }), let parsed = Int(parts[1]),
                (0...bits).contains(parsed)
            else {
                return nil
            }
            length = parsed
        }
        self.address = address
        self.prefixLength = length
    }

    /// Whether `candidate` is in the block. An IPv4-mapped IPv6 address counts as the IPv4
    /// address it carries (a dual-stack socket reports IPv4 peers that way).
    public func contains(_ candidate: IPAddress) -> Bool {
        let candidate = candidate.mappedIPv4 ?? candidate
        let network =
            address.mappedIPv4.map { mapped in (mapped, max(0, prefixLength - 96)) } ?? (address, prefixLength)
        guard candidate.bytes.count == network.0.bytes.count else { return false }
        var remaining = network.1
        for (a, b) in zip(candidate.bytes, network.0.bytes) where remaining > 0 {
            let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
            if a & mask != b & mask { return false }
            remaining -= 8
        }
        return true
    }

    public var description: String { "\(address)/\(prefixLength)" }

    /// Parses a comma-separated list; `nil` when any entry is not a block.
    public static func list(_ text: some StringProtocol) -> [IPNetwork]? {
        var networks: [IPNetwork] = []
        for entry in text.split(separator: ",") {
            guard let trimmed = InputLine.trimmed(String(entry)) else { continue }
            guard let network = IPNetwork(trimmed) else { return nil }
            networks.append(network)
        }
        return networks
    }
}
