import NIOCore
import NIOHTTP1

/// The metrics endpoint's two routes, on NIO's HTTP/1.1 codec: `GET /metrics` (Prometheus
/// text format) and `GET /health` (200 while the server accepts connections, 503 once it
/// is shutting down). Other paths are 404, other methods 405. Every response closes its
/// connection: a scrape every few seconds gains nothing from keep-alive, and nothing is
/// left open when the server stops.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    struct Routes: Sendable {
        /// The current metrics, rendered.
        let metrics: @Sendable () -> [UInt8]
        /// Whether the server accepts connections.
        let isAccepting: @Sendable () -> Bool
    }

    private let routes: Routes
    private var request: HTTPRequestHead?
    private var responded = false

    init(routes: Routes) {
        self.routes = routes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break  // No route takes a body.
        case .end:
            guard let head = request, !responded else { return }
            responded = true
            respond(to: head, context: context)
        }
    }

    /// A request that is not HTTP: NIO's codec has answered 400; the connection ends here.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // A client that connects and says nothing does not keep its socket.
        if event is IdleStateHandler.IdleStateEvent { return context.close(promise: nil) }
        context.fireUserInboundEventTriggered(event)
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        var headers = HTTPHeaders()
        let status: HTTPResponseStatus
        var body: [UInt8]
        switch path {
        case "/metrics", "/health":
            guard head.method == .GET || head.method == .HEAD else {
                status = .methodNotAllowed
                body = Array("Method Not Allowed\n".utf8)
                headers.add(name: "Allow", value: "GET, HEAD")
                break
            }
            if path == "/metrics" {
                status = .ok
                body = routes.metrics()
                headers.add(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
            } else if routes.isAccepting() {
                status = .ok
                body = Array("OK\n".utf8)
            } else {
                status = .serviceUnavailable
                body = Array("Shutting down\n".utf8)
            }
        default:
            status = .notFound
            body = Array("Not Found\n".utf8)
        }
        if headers["Content-Type"].isEmpty { headers.add(name: "Content-Type", value: "text/plain; charset=utf-8") }
        headers.add(name: "Content-Length", value: "\(body.count)")
        headers.add(name: "Connection", value: "close")
        let version = HTTPVersion(major: 1, minor: 1)
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension MetricsHTTPHandler: Sendable {}
