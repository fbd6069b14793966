import ChatCore
import ChatHub
import ChatWebClient
import NIOHTTP1

/// The web listener's decisions about one HTTP request, apart from the I/O: which file or
/// status it gets, whether its WebSocket handshake may go ahead (the Origin check against
/// cross-site WebSocket hijacking), and who the client is behind trusted proxies. Pure.
struct WebRequestPolicy: Sendable {
    /// `http` or `https`: how this listener is reached.
    let scheme: String
    let allowedOrigins: Set<String>
    let trustedProxies: [IPNetwork]

    /// The path the WebSocket is served on.
    static let socketPath = "/ws"

    enum Response {
        /// A file of the page; `notModified`: the browser's copy is current (`304`).
        case file(WebClientFile, notModified: Bool)
        case refused(HTTPResponseStatus, reason: String)
    }

    /// What a request that is not a WebSocket handshake gets.
    func response(to head: HTTPRequestHead, peer: ClientAddress) -> Response {
        guard head.method == .GET || head.method == .HEAD else {
            return .refused(.methodNotAllowed, reason: "Method Not Allowed")
        }
        let path = Self.path(of: head.uri)
        if path == Self.socketPath {
            // A handshake the upgrader turned down, or a plain GET of the socket's path.
            guard isOriginAllowed(head.headers, peer: peer) else { return .refused(.forbidden, reason: "Forbidden") }
            return .refused(.upgradeRequired, reason: "Upgrade Required: this is a WebSocket")
        }
        guard let file = WebClientFiles.file(at: path) else { return .refused(.notFound, reason: "Not Found") }
        let cached = head.headers["If-None-Match"].contains { value in
            value.split(separator: ",").contains { $0.trimmingPrefix(" ") == file.entityTag || $0 == "*" }
        }
        return .file(file, notModified: cached)
    }

    /// Whether a WebSocket handshake may be upgraded: `GET /ws` from the page's own origin,
    /// one of `WEB_ALLOWED_ORIGINS`, or a client that is not a browser (no `Origin`:
    /// browsers always send one, and only a browser can be made to connect by another site).
    func mayUpgrade(_ head: HTTPRequestHead, peer: ClientAddress) -> Bool {
        head.method == .GET && Self.path(of: head.uri) == Self.socketPath && isOriginAllowed(head.headers, peer: peer)
    }

    func isOriginAllowed(_ headers: HTTPHeaders, peer: ClientAddress) -> Bool {
        let origins = headers["Origin"]
        guard let value = origins.first else { return true }
        guard origins.count == 1, let origin = WebOrigin(value) else { return false }
        if allowedOrigins.contains(origin.text) { return true }
        let hosts = headers["Host"]
        guard hosts.count == 1, let host = hosts.first else { return false }
        // Behind a proxy that ends TLS the page was served over https while this listener
        // speaks http: the proxy says so, and only a trusted one is believed.
        var pageScheme = scheme
        if isTrusted(peer), let forwarded = headers["X-Forwarded-Proto"].last?.lowercased(),
            forwarded == "http" || forwarded == "https"
        {
            pageScheme = forwarded
        }
        return WebOrigin(scheme: pageScheme, host: host)?.text == origin.text
    }

    /// The client: the connection's peer, or behind trusted proxies the right-most hop of
    /// `X-Forwarded-For` that is not one of them.
    func client(of head: HTTPRequestHead, peer: ClientAddress) -> ClientAddress {
        guard let address = IPAddress(peer.display), isTrusted(peer) else { return peer }
        let forwarded = ForwardedFor.client(
            peer: address, headerValues: head.headers["X-Forwarded-For"], trusted: trustedProxies)
        return forwarded == address ? peer : ClientAddress(forwarded)
    }

    private func isTrusted(_ peer: ClientAddress) -> Bool {
        guard let address = IPAddress(peer.display) else { return false }
        return trustedProxies.contains { $0.contains(address) }
    }

    static func path(of uri: String) -> String {
        String(uri.prefix { $0 != "?" && $0 != "#" })
    }
}
