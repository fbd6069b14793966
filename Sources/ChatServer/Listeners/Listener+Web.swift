import ChatHub
import Logging
import NIOCore
import NIOHTTP1

extension Listener {
    /// The web client (SPEC §10): HTTP/1.1 serves the page (``WebPageHandler``), and `/ws`
    /// upgrades to a WebSocket whose text frames are lines (``WebSocketLineHandler``) into
    /// the same session as any other listener's. The client is the address step's peer, or
    /// behind trusted proxies the one `X-Forwarded-For` names; its session starts once the
    /// handshake is done.
    /// - Parameter tls: the certificate for HTTPS (`WEB_TLS_PORT`); `nil`: plain HTTP.
    static func web(
        port: Int, settings: WebSettings, tls: TLSContextStore?, maxLineBytes: Int,
        proxyProtocol: ProxyProtocolSettings?,
        clock: ServerClock, logger: Logger, metrics: ChatMetrics
    ) -> Listener {
        let policy = WebRequestPolicy(
            scheme: tls == nil ? "http" : "https", allowedOrigins: settings.allowedOrigins,
            trustedProxies: settings.trustedProxies)
        return Listener(name: tls == nil ? "web" : "web-tls", host: settings.host, port: port) { channel, session in
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(addressStep(proxyProtocol, logger: logger, metrics: metrics))
            if let tls { try addTLS(tls, to: channel, logger: logger, metrics: metrics) }
            let connection = NIOLoopBound(WebConnection(), eventLoop: channel.eventLoop)
            let page = WebPageHandler(
                policy: policy, connection: connection.value, idleTimeout: settings.pingInterval)
            let upgrader = WebSocketUpgrader(
                maxFrameSize: maxLineBytes,
                mayUpgrade: { _, head in
                    guard let peer = connection.value.peer else { return false }
                    return policy.mayUpgrade(head, peer: peer)
                },
                addHandlers: { channel, head in
                    guard let peer = connection.value.peer else { throw ChannelError.inappropriateOperationForState }
                    try channel.pipeline.syncOperations.addHandler(
                        WebSocketLineHandler(
                            maximumMessageBytes: maxLineBytes, pingInterval: settings.pingInterval, now: clock.now))
                    try session.addSession(to: channel)
                    let client = policy.client(of: head, peer: peer)
                    channel.pipeline.fireUserInboundEventTriggered(ClientAddressResolved(address: client))
                })
            let pageOnLoop = NIOLoopBound(page, eventLoop: channel.eventLoop)
            try pipeline.configureHTTPServerPipeline(
                withServerUpgrade: (
                    upgraders: [upgrader],
                    completionHandler: { context in
                        // The page's handler steps aside before the WebSocket's are added.
                        context.pipeline.syncOperations.removeHandler(pageOnLoop.value, promise: nil)
                    }
                ),
                withErrorHandling: true)
            try pipeline.addHandler(page)
        }
    }
}
