/// Why a connection was closed before its session began (a label of
/// `chat_connections_refused_total`).
package enum ConnectionRefusal: String, CaseIterable, Sendable {
    // The hub's admission.
    case shuttingDown = "shutting_down"
    case banned
    case connectionRate = "connection_rate"
    case serverFull = "server_full"
    case ipLimit = "ip_limit"
    /// A cluster node that cannot reach Redis.
    case chatUnavailable = "chat_unavailable"
    // A listener's steps before admission.
    case untrustedProxy = "untrusted_proxy"
    case proxyHeader = "proxy_header"
    case tlsHandshake = "tls_handshake"
}
