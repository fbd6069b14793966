import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Why a connection could not be made, in words a person reads: `connection refused`, not
/// NIO's nested error values.
enum ConnectionFailure {
    static func describe(_ error: any Error) -> String {
        if let error = error as? NIOConnectionError, let first = error.connectionErrors.first {
            return describe(first.error)
        }
        if let error = error as? IOError {
            return String(cString: strerror(error.errnoCode)).lowercased()
        }
        if let error = error as? ChannelError, case .connectTimeout = error { return "no answer in time" }
        return "\(error)"
    }
}
