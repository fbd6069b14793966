import NIOCore

/// One Redis connection's pipeline end: writes commands as they come, and hands each reply
/// to the command that waits for it, in order (Redis answers in order), while push frames
/// (pub/sub messages, invalidations) go to their own handler. Lives on the connection's
/// event loop.
///
/// Every command that waits for a reply has a deadline, the command timeout from when it
/// was written, watched by one timer for the whole connection (as valkey-swift's channel
/// handler does), not one per command: the timer waits for the oldest command's deadline,
/// and when it fires with that command answered, it waits again for the next oldest's.
/// Replies come in order and every command has the same timeout, so the oldest waiting
/// command always has the nearest deadline. A command past its deadline fails with
/// ``RedisError/timeout`` and closes the connection (the answers after it can no longer be
/// matched), failing the rest as ``RedisError/connectionClosed``.
final class RESPChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    /// A command and the promise its reply completes; `nil` for a command whose answers
    /// come as push frames (SUBSCRIBE in RESP3).
    typealias OutboundIn = (RESPCommand, EventLoopPromise<RESPValue>?)
    typealias OutboundOut = ByteBuffer

    private let parser: RESPParser
    private let onPush: @Sendable (RESPValue) -> Void
    private var received = ByteBuffer()
    private var waiting = CircularBuffer<(reply: EventLoopPromise<RESPValue>, deadline: NIODeadline)>()
    private let commandTimeout: TimeAmount
    /// The one deadline timer, while commands wait.
    private var deadlineTimer: Scheduled<Void>?
    /// Set once the connection cannot be used any more: every later command fails with it.
    private var failure: RedisError?
    /// Whether a flush is queued on the loop (see ``flush(context:)``).
    private var flushScheduled = false

    init(
        parser: RESPParser = RESPParser(), commandTimeout: TimeAmount,
        onPush: @escaping @Sendable (RESPValue) -> Void
    ) {
        self.parser = parser
        self.commandTimeout = commandTimeout
        self.onPush = onPush
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let (command, reply) = unwrapOutboundIn(data)
        if let failure {
            reply?.fail(failure)
            promise?.fail(failure)
            return
        }
        if let reply {
            waiting.append((reply, .now() + commandTimeout))
            if deadlineTimer == nil { watchDeadlines(context: context) }
        }
        context.write(wrapOutboundOut(command.encoded), promise: promise)
    }

    /// Arms the timer for the oldest waiting command's deadline.
    private func watchDeadlines(context: ChannelHandlerContext) {
        guard let oldest = waiting.first else { return }
        deadlineTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: oldest.deadline) {
            self.deadlineTimer = nil
            guard let oldest = self.waiting.first else { return }
            guard oldest.deadline <= .now() else { return self.watchDeadlines(context: context) }
            self.waiting.removeFirst()
            oldest.reply.fail(RedisError.timeout)
            self.fail(.connectionClosed, context: context)
        }
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
                } else if let (reply, _) = waiting.popFirst() {
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
        deadlineTimer?.cancel()
        deadlineTimer = nil
        while let (reply, _) = waiting.popFirst() { reply.fail(error) }
    }
}

@available(*, unavailable)
extension RESPChannelHandler: Sendable {}
