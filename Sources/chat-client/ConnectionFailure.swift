import NIOCore
import NIOPosix
import NIOSSL

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
        if let error = error as? NIOSSLError, case .handshakeFailed(let cause) = error {
            return "the TLS handshake failed (\(cause))"
        }
        return "\(error)"
    }

    /// Why the server's certificate was refused, and what to do, or `nil` when `error` is
    /// something else.
    static func untrustedCertificate(_ error: any Error, host: String) -> String? {
        guard let error = error as? NIOSSLError, case .handshakeFailed(let cause) = error,
            "\(cause)".contains("CERTIFICATE_VERIFY_FAILED")
        else { return nil }
        return "the server's certificate is not trusted for \(host): if the server uses a CA of its own, "
            + "give its certificate with --ca-file FILE (--insecure skips the check: for testing only)"
    }
}
