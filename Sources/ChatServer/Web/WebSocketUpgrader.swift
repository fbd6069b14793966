import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// The WebSocket handshake (RFC 6455 §4.2) for `/ws`: checks the request, asks `mayUpgrade`
/// (the Origin check), answers with `Sec-WebSocket-Accept`, then sets the connection up
/// with NIO's frame decoder and `addHandlers` (the line handler and the session).
///
/// Ours rather than NIO's `NIOWebSocketServerUpgrader` because that one also puts NIO's
/// frame encoder in the pipeline, which writes a header and a payload per frame: the line
/// handler writes whole frames itself, so that a line for a room is framed once per event
/// loop and the same bytes go to every member, as on TCP (BENCHMARKS.md, "WebSocket").
struct WebSocketUpgrader: HTTPServerProtocolUpgrader, Sendable {
    /// The handshake was refused (not `/ws`, another origin, a bad key or version): the
    /// request goes on to the page handler, which answers it.
    struct Refused: Error {}

    static let magicGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    let supportedProtocol = "websocket"
    let requiredUpgradeHeaders: [String] = []
    let maxFrameSize: Int
    let mayUpgrade: @Sendable (any Channel, HTTPRequestHead) -> Bool
    let addHandlers: @Sendable (any Channel, HTTPRequestHead) throws -> Void

    func buildUpgradeResponse(
        channel: any Channel, upgradeRequest: HTTPRequestHead, initialResponseHeaders: HTTPHeaders
    ) -> EventLoopFuture<HTTPHeaders> {
        let keys = upgradeRequest.headers["Sec-WebSocket-Key"]
        guard keys.count == 1, let key = keys.first, upgradeRequest.headers["Sec-WebSocket-Version"] == ["13"],
            mayUpgrade(channel, upgradeRequest)
        else {
            return channel.eventLoop.makeFailedFuture(Refused())
        }
        var headers = initialResponseHeaders
        headers.replaceOrAdd(name: "Upgrade", value: "websocket")
        headers.replaceOrAdd(name: "Connection", value: "upgrade")
        headers.add(name: "Sec-WebSocket-Accept", value: Self.accept(key))
        return channel.eventLoop.makeSucceededFuture(headers)
    }

    func upgrade(context: ChannelHandlerContext, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
        let channel = context.channel
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(
                ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxFrameSize)))
            try addHandlers(channel, upgradeRequest)
        }
    }

    /// `Sec-WebSocket-Accept` for a key: base64 of SHA-1 of the key and the RFC's GUID.
    static func accept(_ key: String) -> String {
        Data(Insecure.SHA1.hash(data: Array((key + magicGUID).utf8))).base64EncodedString()
    }
}
