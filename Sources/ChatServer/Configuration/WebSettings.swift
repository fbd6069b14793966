import ChatCore

/// The web client's listeners (`WEB_PORT`, `WEB_TLS_PORT`): the page, and the WebSocket
/// that carries the line protocol.
public struct WebSettings: Sendable, Equatable {
    public var host: String
    /// Plain HTTP; `nil`: none.
    public var port: Int?
    /// HTTPS with the server's certificate (``ServerConfiguration/tls``); `nil`: none.
    public var tlsPort: Int?
    /// Origins (`scheme://host[:port]`, lower-cased) whose pages may open the WebSocket,
    /// besides the page's own.
    public var allowedOrigins: Set<String>
    /// Peers whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed (`TRUSTED_PROXIES`).
    public var trustedProxies: [IPNetwork]
    /// Silence after which a WebSocket client is pinged; as long again without an answer
    /// closes it.
    public var pingInterval: Duration

    public init(
        host: String, port: Int?, tlsPort: Int? = nil, allowedOrigins: Set<String> = [],
        trustedProxies: [IPNetwork] = [], pingInterval: Duration = .seconds(30)
    ) {
        self.host = host
        self.port = port
        self.tlsPort = tlsPort
        self.allowedOrigins = allowedOrigins
        self.trustedProxies = trustedProxies
        self.pingInterval = pingInterval
    }
}

extension ServerConfiguration {
    static func web(_ values: SettingValues, tlsPort: Int?) throws(ConfigurationError) -> WebSettings? {
        let port = try values.integerOrOff(.webPort)
        guard port != nil || tlsPort != nil else { return nil }
        var origins: Set<String> = []
        for entry in try values.string(.webAllowedOrigins).split(separator: ",") {
            guard let trimmed = InputLine.trimmed(String(entry)) else { continue }
            guard let origin = WebOrigin(String(trimmed)) else {
                throw ConfigurationError(
                    .webAllowedOrigins, "'\(trimmed)' is not an origin such as https://chat.example.com")
            }
            origins.insert(origin.text)
        }
        guard let trusted = IPNetwork.list(try values.string(.trustedProxies)) else {
            throw ConfigurationError(
                .trustedProxies, "must be a comma-separated list of address blocks such as 10.0.0.0/8")
        }
        let host = try values.string(.webBindAddress)
        return WebSettings(
            host: host.isEmpty ? try values.string(.bindAddress) : host, port: port, tlsPort: tlsPort,
            allowedOrigins: origins, trustedProxies: trusted,
            pingInterval: .seconds(try values.integer(.webPingSeconds)))
    }
}
