import ChatHub

/// Something a session reports for the server's metrics (``ChatMetrics``); the connection
/// handler counts it.
enum SessionEvent: Equatable, Sendable {
    /// The hub refused the connection.
    case refused(ConnectionRefusal)
    case loggedIn
    case loginFailed(LoginFailure)
    /// A code request was refused by a throttle (per address, per IP or server-wide).
    case codeThrottled
    /// The client sent more than `MAX_QUEUED_LINES` lines that flood control held back.
    case disconnectedFlooding
    /// More than `MAX_SENDQ_BYTES` waited for a client that does not read.
    case disconnectedSlowConsumer
}
