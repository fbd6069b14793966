import ChatCore
import NIOCore

/// A client's address as the limits see it.
///
/// IPv4 addresses count one by one. IPv6 clients usually own a whole /64, so per-IP limits
/// count the /64: otherwise one host could take any number of "IP" slots. IPv4-mapped IPv6
/// addresses count as the IPv4 address they carry.
package struct ClientAddress: Hashable, Sendable {
    /// The address as it is shown to people (in the per-IP rejection, in logs).
    package let display: String
    /// The key per-IP limits count by.
    package let limitKey: String

    package init(_ ip: IPAddress) {
        if let v4 = ip.mappedIPv4 ?? (ip.isIPv4 ? ip : nil) {
            display = v4.description
            limitKey = v4.description
        } else {
            display = ip.description
            limitKey = ip.prefix64
        }
    }

    /// The socket's peer; `nil` for a UNIX domain socket.
    package init?(_ address: SocketAddress) {
        switch address {
        case .v4, .v6:
            guard let text = address.ipAddress, let ip = IPAddress(text) else { return nil }
            self.init(ip)
        case .unixDomainSocket:
            return nil
        }
    }

    init(display: String, limitKey: String) {
        self.display = display
        self.limitKey = limitKey
    }
}
