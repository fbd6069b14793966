import ChatHub
import ChatWebClient
import NIOCore
import NIOHTTP1

/// The web listener's HTTP side until a WebSocket takes the connection over: serves the
/// page's files with headers that keep them to themselves, and says no (`403`, `404`,
/// `405`, `426`) to the rest. Learns the peer from the listener's address step, as a
/// connection handler would; a connection that sends no request within the ping interval
/// is closed.
final class WebPageHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// The page may load only its own files and talk only to its own server.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    private let policy: WebRequestPolicy
    private let connection: WebConnection
    private let idleTimeout: TimeAmount
    private var request: HTTPRequestHead?
    private var idleTimer: Scheduled<Void>?

    init(policy: WebRequestPolicy, connection: WebConnection, idleTimeout: Duration) {
        self.policy = policy
        self.connection = connection
        self.idleTimeout = TimeAmount(idleTimeout)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { restartIdleTimer(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        restartIdleTimer(context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The session starts after the handshake, with the client it names; until then
        // the peer is only kept.
        guard let resolved = event as? ClientAddressResolved else {
            return context.fireUserInboundEventTriggered(event)
        }
        connection.peer = resolved.address
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
            idleTimer?.cancel()
        case .body:
            break  // No route takes a body.
        case .end:
            guard let head = request, let peer = connection.peer else { return }
            request = nil
            respond(to: head, peer: peer, context: context)
        }
    }

    /// A request that is not HTTP: NIO's codec has answered 400; the connection ends here.
    /// A handshake the upgrader turned down is not an end: the request comes next, and gets
    /// its answer (403, 426) here.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is WebSocketUpgrader.Refused { return }
        context.close(promise: nil)
    }

    private func respond(to head: HTTPRequestHead, peer: ClientAddress, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        headers.add(name: "Referrer-Policy", value: "no-referrer")
        headers.add(name: "Content-Security-Policy", value: Self.contentSecurityPolicy)
        let status: HTTPResponseStatus
        var body: ByteBuffer?
        switch policy.response(to: head, peer: peer) {
        case .file(let file, let notModified):
            status = notModified ? .notModified : .ok
            // Revalidated on every visit: after an upgrade the page and its script change
            // together, never one without the other.
            headers.add(name: "Cache-Control", value: "no-cache")
            headers.add(name: "ETag", value: file.entityTag)
            if !notModified {
                headers.add(name: "Content-Type", value: file.contentType)
                headers.add(name: "Content-Length", value: "\(file.bytes.count)")
                body = context.channel.allocator.buffer(bytes: file.bytes)
            }
        case .refused(let refusal, let reason):
            status = refusal
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            headers.add(name: "Cache-Control", value: "no-store")
            if refusal == .methodNotAllowed { headers.add(name: "Allow", value: "GET, HEAD") }
            if refusal == .upgradeRequired {
                headers.add(name: "Upgrade", value: "websocket")
                headers.add(name: "Sec-WebSocket-Version", value: "13")
            }
            let text = reason + "\n"
            headers.add(name: "Content-Length", value: "\(text.utf8.count)")
            body = context.channel.allocator.buffer(string: text)
        }
        let keepAlive = head.isKeepAlive && status.code < 400
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        let response = HTTPResponseHead(version: head.version, status: status, headers: headers)
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        if let body, head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if keepAlive {
            restartIdleTimer(context: context)
        } else {
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    private func restartIdleTimer(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(in: idleTimeout) {
            context.close(promise: nil)
        }
    }
}

/// What the web listener's handlers share about one connection before its session starts:
/// the peer (from the address step), then the client (after the handshake).
final class WebConnection {
    var peer: ClientAddress?
}

@available(*, unavailable)
extension WebPageHandler: Sendable {}

@available(*, unavailable)
extension WebConnection: Sendable {}
