import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A client's address as the limits see it.
///
/// IPv4 addresses count one by one. IPv6 clients usually own a whole /64, so per-IP limits
/// count the /64: otherwise one host could take any number of "IP" slots. IPv4-mapped IPv6
/// addresses count as the IPv4 address they carry.
struct ClientAddress: Hashable, Sendable {
    /// The address as it is shown to people (in the per-IP rejection, in logs).
    let display: String
    /// The key per-IP limits count by.
    let limitKey: String

    init?(_ address: SocketAddress) {
        switch address {
        case .v4:
            guard let ip = address.ipAddress else { return nil }
            display = ip
            limitKey = ip
        case .v6:
            guard let ip = address.ipAddress, let bytes = Self.ipv6Bytes(ip) else { return nil }
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
                let v4 = bytes[12...].map(String.init).joined(separator: ".")
                display = v4
                limitKey = v4
            } else {
                display = ip
                limitKey = Self.prefix64(bytes)
            }
        case .unixDomainSocket:
            return nil
        }
    }

    init(display: String, limitKey: String) {
        self.display = display
        self.limitKey = limitKey
    }

    /// The 16 bytes of a textual IPv6 address.
    static func ipv6Bytes(_ text: String) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: 16)
        let parsed = bytes.withUnsafeMutableBytes { inet_pton(AF_INET6, text, $0.baseAddress) }
        return parsed == 1 ? bytes : nil
    }

    /// `2001:db8:1:2::/64` for any address in that /64.
    static func prefix64(_ bytes: [UInt8]) -> String {
        let groups = stride(from: 0, to: 8, by: 2).map { index in
            String(UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1]), radix: 16)
        }
        return groups.joined(separator: ":") + "::/64"
    }
}
