/// Why a Redis command did not get its answer: a ``code`` to decide on and, where there is
/// one, the server's or the cause's text.
///
/// A struct with a code rather than a public enum (as valkey-swift's `ValkeyClientError`):
/// a new kind of failure is a new code, not a breaking change for every `switch`.
public struct RedisError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case server, connectionClosed, timeout, protocolError, connectFailed, notPrimary
        }

        private let base: Base

        /// The server answered with an error (`-ERR ...`, `-WRONGPASS ...`).
        public static let server = Code(base: .server)
        /// The connection closed (or broke) before the answer came. Whether the server ran
        /// the command is not known.
        public static let connectionClosed = Code(base: .connectionClosed)
        /// No answer within the command timeout; the connection is closed, since the answers
        /// of commands sent after it can no longer be told apart.
        public static let timeout = Code(base: .timeout)
        /// The server sent something that is not RESP3.
        public static let protocolError = Code(base: .protocolError)
        /// The connection could not be made.
        public static let connectFailed = Code(base: .connectFailed)
        /// The server is not the primary it was taken for (a replica, or a primary that was
        /// demoted and does not know it yet), or no sentinel could name one.
        public static let notPrimary = Code(base: .notPrimary)

        public var description: String { "\(base)" }
    }

    public let code: Code
    /// The server's error text, or what went wrong; empty when the code says it all.
    public let message: String

    public init(_ code: Code, message: String = "") {
        self.code = code
        self.message = message
    }

    /// An error reply: its text.
    public static func server(_ message: String) -> RedisError { RedisError(.server, message: message) }
    public static let connectionClosed = RedisError(.connectionClosed)
    public static let timeout = RedisError(.timeout)
    public static func protocolError(_ message: String) -> RedisError { RedisError(.protocolError, message: message) }
    public static func connectFailed(_ message: String) -> RedisError { RedisError(.connectFailed, message: message) }
    public static func notPrimary(_ message: String) -> RedisError { RedisError(.notPrimary, message: message) }

    public var description: String { message.isEmpty ? "\(code)" : "\(code)(\(message))" }
}
