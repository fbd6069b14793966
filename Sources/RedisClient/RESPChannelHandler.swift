import NIOCore

/// One Redis connection's pipeline end: writes commands as they come, and hands each reply
/// to the command that waits for it, in order (Redis answers in order), while push frames
/// (pub/sub messages, invalidations) go to their own handler. Lives on the connection's
/// event loop.
final class RESPChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    /// A command and the promise its reply completes; `nil` for a command whose answers
    /// come as push frames (SUBSCRIBE in RESP3).
    typealias OutboundIn = (RESPCommand, EventLoopPromise<RESPValue>?)
    typealias OutboundOut = ByteBuffer

    private let parser: RESPParser
    private let onPush: @Sendable (RESPValue) -> Void
    private var received = ByteBuffer()
    private var waiting = CircularBuffer<EventLoopPromise<RESPValue>>()
    /// Set once the connection cannot be used any more: every later command fails with it.
    private var failure: RedisError?
    /// Whether a flush is queued on the loop (see ``flush(context:)``).
    private var flushScheduled = false

    init(parser: RESPParser = RESPParser(), onPush: @escaping @Sendable (RESPValue) -> Void) {
        self.parser = parser
        self.onPush = onPush
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let (command, reply) = unwrapOutboundIn(data)
        if let failure {
            reply?.fail(failure)
            promise?.fail(failure)
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: 64)
        command.encode(into: &buffer)
        if let reply { waiting.append(reply) }
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    /// A flush waits behind the tasks already queued on the event loop (the rest of its
    /// tick): commands sent meanwhile (the appends of many clients' lines) leave in one
    /// write, and Redis wakes once for them, not once per command.
    func flush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            context.flush()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        received.writeBuffer(&bytes)
        do {
            while let value = try parser.next(from: &received) {
                if case .push = value {
                    onPush(value)
                } else if let reply = waiting.popFirst() {
                    reply.succeed(value)
                } else {
                    throw RESPParser.Error.malformed("a reply that no command waits for")
                }
            }
            received.discardReadBytes()
        } catch {
            fail(.protocolError("\(error)"), context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(failure ?? .connectionClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(.connectionClosed, context: context)
    }

    /// Ends the connection: every waiting command fails with `error`.
    func fail(_ error: RedisError, context: ChannelHandlerContext) {
        if failure == nil { failure = error }
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: RedisError) {
        if failure == nil { failure = error }
        while let reply = waiting.popFirst() { reply.fail(error) }
    }
}

@available(*, unavailable)
extension RESPChannelHandler: Sendable {}
