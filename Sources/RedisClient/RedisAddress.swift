/// Where a Redis server or sentinel listens: `host:port`, with an IPv6 host in brackets
/// (`[::1]:26379`).
public struct RedisAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// - Returns: `nil` unless the text is a host and a port from 1 to 65535.
    public init?(parsing text: some StringProtocol) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port)
        else { return nil }
        var host = text[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty, !host.contains(where: { $0.isWhitespace || $0 == "/" || $0 == "@" }) else { return nil }
        self.init(host: String(host), port: port)
    }

    /// A comma-separated list (`CLUSTER_REDIS_SENTINELS`).
    /// - Returns: `nil` when it is empty or any item is not an address.
    public static func list(parsing text: String) -> [RedisAddress]? {
        var addresses: [RedisAddress] = []
        for item in text.split(separator: ",") {
            guard let address = RedisAddress(parsing: item.filter { !$0.isWhitespace }) else { return nil }
            addresses.append(address)
        }
        return addresses.isEmpty ? nil : addresses
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
