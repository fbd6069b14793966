import Foundation

/// Sockets of this process, found by their ports among its open descriptors: how a test
/// reaches the server's side of one of its clients' connections (the server runs in the
/// test's process) to set what no setting of the server sets.
public enum ProcessSocket {
    /// The descriptor bound to `localPort` and connected to `remotePort` (IPv4 or IPv6),
    /// or `nil`.
    public static func descriptor(localPort: Int, remotePort: Int) -> CInt? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return nil }
        for entry in entries {
            guard let descriptor = CInt(entry), port(of: descriptor, getsockname) == localPort,
                port(of: descriptor, getpeername) == remotePort
            else { continue }
            return descriptor
        }
        return nil
    }

    /// Sets the kernel's send buffer of a socket (which also stops its growing by itself).
    public static func setSendBuffer(of descriptor: CInt, bytes: Int) throws {
        var value = CInt(bytes)
        guard setsockopt(descriptor, SOL_SOCKET, SO_SNDBUF, &value, socklen_t(MemoryLayout<CInt>.size)) == 0 else {
            throw TestFailure("setsockopt(SO_SNDBUF) failed: errno \(errno)")
        }
    }

    /// The port of an IPv4 or IPv6 address: both keep it, in network order, right after the
    /// two bytes of the family.
    private static func port(
        of descriptor: CInt, _ name: (CInt, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> CInt
    ) -> Int? {
        var storage = sockaddr_storage()
        var size = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { name(descriptor, $0, &size) }
        }
        guard result == 0, storage.ss_family == sa_family_t(AF_INET) || storage.ss_family == sa_family_t(AF_INET6)
        else { return nil }
        return withUnsafeBytes(of: &storage) { Int($0[2]) << 8 | Int($0[3]) }
    }
}
