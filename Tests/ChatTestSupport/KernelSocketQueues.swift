import Foundation

/// What the kernel holds for one TCP connection of this machine, from `/proc/net/tcp` and
/// `/proc/net/tcp6`: bytes waiting to be sent and bytes received but not yet read, as seen
/// on the side bound to `localPort` and connected to `remotePort`.
public struct KernelSocketQueues: Equatable, Sendable {
    public var sendQueue: Int
    public var receiveQueue: Int

    /// The connection's queues, or `nil` when no such connection is established (never was,
    /// or closed).
    public static func of(localPort: Int, remotePort: Int) -> KernelSocketQueues? {
        for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
            // Read until the end of the file: these files report a size of 0, so nothing
            // here depends on the size.
            guard let handle = FileHandle(forReadingAtPath: file) else { continue }
            defer { try? handle.close() }
            guard let data = try? handle.readToEnd(), let table = String(data: data, encoding: .utf8) else { continue }
            for row in table.split(separator: "\n").dropFirst() {
                // sl local_address rem_address st tx_queue:rx_queue ...; addresses are
                // HEXIP:HEXPORT, state 01 is ESTABLISHED.
                let fields = row.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count > 4, fields[3] == "01",
                    port(of: fields[1]) == localPort, port(of: fields[2]) == remotePort
                else { continue }
                let queues = fields[4].split(separator: ":")
                guard queues.count == 2, let sent = Int(queues[0], radix: 16), let received = Int(queues[1], radix: 16)
                else { continue }
                return KernelSocketQueues(sendQueue: sent, receiveQueue: received)
            }
        }
        return nil
    }

    private static func port(of address: Substring) -> Int? {
        address.split(separator: ":").last.flatMap { Int($0, radix: 16) }
    }
}
