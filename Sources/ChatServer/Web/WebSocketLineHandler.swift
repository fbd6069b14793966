import NIOCore
import NIOPosix
import NIOWebSocket

/// Turns a WebSocket into the line protocol (SPEC §10): each text message from the client
/// becomes one line for the connection handler, each line the server writes becomes one
/// text frame. Everything else RFC 6455 asks of a server happens here: fragments are joined
/// (within the line limit), pings answered, silent clients pinged and given up, a close
/// answered, and what breaks the rules closed with the code that says why.
///
/// Sits between NIO's frame decoder and ``ConnectionHandler``, which cannot tell a browser
/// from a terminal. It writes frames itself (``WebSocketFraming``): the hub writes one
/// buffer of lines to every member of a room, and its frames are made once per event loop,
/// not once per member.
final class WebSocketLineHandler: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = InboundLine
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let maximumMessageBytes: Int
    private let now: @Sendable () -> ContinuousClock.Instant
    private var keepalive: WebSocketKeepalive
    private var keepaliveTimer: Scheduled<Void>?
    /// The first frames of a message whose last has not come yet.
    private var fragments: ByteBuffer?
    /// A close frame went out: nothing more is written, and the client's close ends it.
    private var closeSent = false

    init(maximumMessageBytes: Int, pingInterval: Duration, now: @escaping @Sendable () -> ContinuousClock.Instant) {
        self.maximumMessageBytes = maximumMessageBytes
        self.now = now
        self.keepalive = WebSocketKeepalive(interval: pingInterval, now: now())
    }

    func handlerAdded(context: ChannelHandlerContext) {
        checkKeepalive(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        keepaliveTimer?.cancel()
        keepaliveTimer = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        keepaliveTimer?.cancel()
        keepaliveTimer = nil
        context.fireChannelInactive()
    }

    // MARK: From the client

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard !closeSent || frame.opcode == .connectionClose else { return }
        keepalive.heard(at: now())
        // RFC 6455 §5.1: every frame a client sends is masked; §5.2: no extension was
        // agreed, so no reserved bit may be set.
        guard frame.maskKey != nil, !frame.rsv1, !frame.rsv2, !frame.rsv3 else {
            return fail(.protocolError, context: context)
        }
        switch frame.opcode {
        case .text:
            guard fragments == nil else { return fail(.protocolError, context: context) }
            if frame.fin {
                deliver(frame.unmaskedData, context: context)
            } else {
                fragments = frame.unmaskedData
            }
        case .continuation:
            guard var message = fragments else { return fail(.protocolError, context: context) }
            guard message.readableBytes + frame.length <= maximumMessageBytes else {
                return fail(.messageTooLarge, context: context)
            }
            var part = frame.unmaskedData
            message.writeBuffer(&part)
            if frame.fin {
                fragments = nil
                deliver(message, context: context)
            } else {
                fragments = message
            }
        case .binary:
            fail(.unacceptableData, context: context)
        case .ping:
            let pong = WebSocketFraming.frame(.pong, frame.unmaskedData, allocator: context.channel.allocator)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .pong:
            break
        case .connectionClose:
            answerClose(frame, context: context)
        default:
            fail(.protocolError, context: context)
        }
    }

    /// One whole text message: valid UTF-8 within the line limit, then one line (a
    /// trailing newline dropped; newlines inside split it as they would on TCP).
    private func deliver(_ message: ByteBuffer, context: ChannelHandlerContext) {
        guard message.readableBytes <= maximumMessageBytes else { return fail(.messageTooLarge, context: context) }
        let bytes = message.readableBytesView
        guard String(validating: bytes, as: UTF8.self) != nil else {
            return fail(.dataInconsistentWithMessage, context: context)
        }
        // Split as bytes: in a Swift string "\r\n" is one character, not a "\n".
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.count > 1, lines.last?.isEmpty == true { lines.removeLast() }
        for line in lines {
            let trimmed = line.last == UInt8(ascii: "\r") ? line.dropLast() : line
            context.fireChannelRead(wrapInboundOut(.line(String(decoding: trimmed, as: UTF8.self))))
        }
    }

    /// The client closes: answer with its code (RFC 6455 §5.5.1) and end the connection.
    private func answerClose(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        guard !closeSent else { return context.close(promise: nil) }
        var data = frame.unmaskedData
        let code = data.readableBytes >= 2 ? data.readWebSocketErrorCode() : nil
        sendClose(code ?? .normalClosure, context: context)
    }

    // MARK: To the client

    /// Lines from the session and the hub (one or several, each ending in `\n`): one text
    /// frame each, all in one buffer, shared with the other members on this loop.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !closeSent else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        let lines = unwrapOutboundIn(data)
        let cache: WebSocketFraming.Cache
        if let current = Self.framesOnThisLoop.currentValue {
            cache = current
        } else {
            cache = WebSocketFraming.Cache()
            Self.framesOnThisLoop.currentValue = cache
        }
        let frames = cache.textFrames(of: lines, allocator: context.channel.allocator)
        context.write(wrapOutboundOut(frames), promise: promise)
    }

    /// One cache per event loop thread: every handler on a loop writes on that thread.
    private static let framesOnThisLoop = ThreadSpecificVariable<WebSocketFraming.Cache>()

    /// The server ends the connection (a quit, a shutdown, a slow consumer): a close frame
    /// first, so a browser knows it was not a network failure.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all, !closeSent, context.channel.isActive {
            closeSent = true
            context.write(wrapOutboundOut(closeFrame(.normalClosure, context: context)), promise: nil)
            context.flush()
        }
        context.close(mode: mode, promise: promise)
    }

    // MARK: Endings

    /// The client broke a rule: a close frame with the code that says which, then the end.
    private func fail(_ code: WebSocketErrorCode, context: ChannelHandlerContext) {
        fragments = nil
        sendClose(code, context: context)
    }

    private func sendClose(_ code: WebSocketErrorCode, context: ChannelHandlerContext) {
        guard !closeSent else { return }
        closeSent = true
        context.writeAndFlush(wrapOutboundOut(closeFrame(code, context: context))).assumeIsolated().whenComplete {
            _ in
            context.close(promise: nil)
        }
    }

    private func closeFrame(_ code: WebSocketErrorCode, context: ChannelHandlerContext) -> ByteBuffer {
        var data = context.channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: code)
        return WebSocketFraming.frame(.connectionClose, data, allocator: context.channel.allocator)
    }

    /// What NIO's frame decoder refuses: a frame over the line limit (1009), a control frame
    /// fragmented or too long (1002).
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let refused = error as? NIOWebSocketError else { return context.fireErrorCaught(error) }
        switch refused {
        case .invalidFrameLength: fail(.messageTooLarge, context: context)
        case .fragmentedControlFrame, .multiByteControlFrameLength: fail(.protocolError, context: context)
        }
    }

    private func checkKeepalive(context: ChannelHandlerContext) {
        let instant = now()
        let next: ContinuousClock.Instant
        switch keepalive.check(at: instant) {
        case .wait(let until):
            next = until
        case .ping(let until):
            let allocator = context.channel.allocator
            let ping = WebSocketFraming.frame(.ping, allocator.buffer(capacity: 0), allocator: allocator)
            context.writeAndFlush(wrapOutboundOut(ping), promise: nil)
            next = until
        case .giveUp:
            return context.close(promise: nil)
        }
        let delay = instant.duration(to: next)
        keepaliveTimer = context.eventLoop.assumeIsolated().scheduleTask(in: max(.milliseconds(1), TimeAmount(delay))) {
            self.keepaliveTimer = nil
            self.checkKeepalive(context: context)
        }
    }
}

@available(*, unavailable)
extension WebSocketLineHandler: Sendable {}
