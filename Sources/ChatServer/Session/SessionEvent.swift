/// Something a session reports for the server's metrics (``ChatMetrics``); the connection
/// handler counts it.
enum SessionEvent: Equatable, Sendable {
    /// The hub refused the connection.
    case refused(ConnectionRefusal)
    case loggedIn
    case loginFailed(LoginFailure)
    /// A code request was refused by a throttle (per address, per IP or server-wide).
    case codeThrottled
}
