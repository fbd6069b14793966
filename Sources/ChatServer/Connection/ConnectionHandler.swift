import ChatCore
import ChatHub
import ChatMail
import Logging
import NIOCore

/// One client connection's transport: the input queue with flood control by back-pressure,
/// the send path, writes. What the connection means is decided by its session
/// (``SessionStateMachine`` and ``CommandRouter``); this handler feeds the session events (a
/// line, a line too long, a flood, an answer, a code mailed or checked, a timer, an error,
/// the close) and carries out the one ``SessionAction`` each returns: it closes the
/// connection only when told to. Lives on the connection's event loop.
final class ConnectionHandler: ChannelInboundHandler, HubAnswerReceiver {
    typealias InboundIn = InboundLine
    typealias OutboundOut = ByteBuffer

    private let services: ServerServices
    private var session: SessionStateMachine?
    private var context: ChannelHandlerContext?
    /// Where the hub's deliveries to this connection are written, on its loop's shard.
    private var local: LocalSession?
    private var shard: LoopShard?

    /// Lines waiting to be handled: while the session waits for an answer (the hub's, the
    /// mail's), or while flood control spaces them out. Reading pauses while any wait.
    private var queue = LineQueue()
    private var floodControl: TokenBucket
    private var queueTimer: Scheduled<Void>?
    private var loginTimer: Scheduled<Void>?
    private var readsPausedForQueue = false
    /// The connection's socket, when the shard may write lines straight to it (else -1).
    /// (Here, in the padding after a Bool: the handler is allocated per connection.)
    private let socket: CInt
    /// Lines flood control has held back since the client last sent one it did not: one
    /// unbroken flood. With the lines still queued, bounded by `MAX_QUEUED_LINES`. (The
    /// queue alone cannot be the bound: reading pauses while lines wait, so how many are
    /// queued at once depends on how much one read cycle brings in.)
    private var linesHeldBack = 0
    private var readsPausedForWritability = false
    /// The channel's `autoRead` as this handler last set it (channels start reading).
    private var isReading = true

    init(services: ServerServices, socket: CInt = -1) {
        let limits = services.configuration.limits
        self.services = services
        self.socket = socket
        self.floodControl = TokenBucket(
            burst: limits.messageBurst, perSecond: limits.messagesPerSecond, now: services.clock.now())
    }

    /// Made when something is logged (rarely), so an idle connection keeps no metadata.
    private var logger: Logger {
        var logger = services.logger
        if let local { logger[metadataKey: "connection"] = "\(local.id)" }
        if let ip = session?.identity.displayIP { logger[metadataKey: "ip"] = "\(ip)" }
        if let username = session?.username { logger[metadataKey: "user"] = "\(username)" }
        return logger
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// The context holds this handler: kept past the connection, the two would hold each
    /// other for good (about 570 bytes of every connection ever made).
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let resolved = event as? ClientAddressResolved else {
            return context.fireUserInboundEventTriggered(event)
        }
        start(context: context, address: resolved.address)
    }

    /// The client is known: the session begins by asking the hub for a slot.
    private func start(context: ChannelHandlerContext, address: ClientAddress) {
        guard self.session == nil else { return }
        let log = services.log
        guard let shard = log.shard(for: context.eventLoop) else {
            logger.error("Connection on an event loop the hub does not serve; closing")
            context.close(promise: nil)
            return
        }
        let local = LocalSession(id: log.makeSessionID(), context: context, socket: socket)
        local.receiver = self
        shard.attach(local)
        self.local = local
        self.shard = shard
        let session = SessionStateMachine(
            identity: .init(
                address: SessionAddress(id: local.id, shard: shard.index), ip: address.limitKey,
                displayIP: address.display),
            policy: services.sessionPolicy)
        self.session = session
        perform(session.connected(), context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        loginTimer?.cancel()
        queueTimer?.cancel()
        queue.removeAll()
        if let local, let shard { shard.detach(local) }
        let slowConsumer = local?.disconnectedAsSlowConsumer == true
        if let action = session?.closed(slowConsumer: slowConsumer) { perform(action, context: context) }
        local = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard isOpen else { return }
        switch unwrapInboundIn(data) {
        case .tooLong:
            let action = session?.lineTooLong(maximum: services.configuration.maxLineBytes) ?? .none
            perform(action, context: context)
        case .line(let text):
            // Empty lines are ignored, and cost nothing.
            guard let line = InputLine.trimmed(text) else { return }
            queue.append(String(line))
            guard queue.count + linesHeldBack <= services.configuration.limits.maxQueuedLines else {
                let action = session?.flooded(queued: queue.count, heldBack: linesHeldBack) ?? .none
                return perform(action, context: context)
            }
            processQueue(context: context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Over the high watermark the client is not reading what it is sent: stop reading
        // what it sends until it catches up. Past MAX_SENDQ_BYTES it is disconnected.
        readsPausedForWritability = !context.channel.isWritable
        updateReading(context: context)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard session != nil else {
            // Before the client's address is known there is no session to decide: the
            // connection (a failed TLS handshake, a bad PROXY header) just ends.
            logger.debug("Connection error", metadata: ["error": "\(error)"])
            return context.close(promise: nil)
        }
        perform(session?.failed(error) ?? .none, context: context)
    }

    // MARK: HubAnswerReceiver

    /// The hub answered (on this loop, from the shard's drain).
    func hubAnswered(_ answer: HubAnswer) {
        guard let context, let action = session?.answered(answer) else { return }
        perform(action, context: context)
        // Lines typed while the answer was on its way are handled now, in order.
        processQueue(context: context)
    }

    // MARK: Lines

    /// Whether the session is live (started, not closed). Read in place: the session is
    /// not copied on the per-line path.
    private var isOpen: Bool { session?.isOpen == true }

    /// Handles queued lines in order, as fast as flood control allows: a burst passes at
    /// once, a flood is spaced out (nothing is dropped), and reading pauses meanwhile so the
    /// kernel's buffers, not the server's memory, hold what the client sends.
    /// - Parameter afterWait: flood control made these lines wait (they are counted in
    ///   ``linesHeldBack``); a line handled without waiting ends the count.
    private func processQueue(context: ChannelHandlerContext, afterWait: Bool = false) {
        while queueTimer == nil, session?.acceptsInput == true, let line = queue.first {
            if let wait = floodControl.take(now: services.clock.now()) {
                queueTimer = context.eventLoop.assumeIsolated().scheduleTask(
                    in: max(.milliseconds(1), TimeAmount(wait))
                ) {
                    self.queueTimer = nil
                    self.processQueue(context: context, afterWait: true)
                }
                break
            }
            queue.removeFirst()
            linesHeldBack = afterWait ? linesHeldBack + 1 : 0
            // Mutated in place through the optional: no copy of the session per line.
            let action = session?.lineReceived(Substring(line)) ?? .none
            perform(action, context: context)
        }
        readsPausedForQueue = !queue.isEmpty
        updateReading(context: context)
    }

    private func updateReading(context: ChannelHandlerContext) {
        guard isOpen else { return }
        let autoRead = !(readsPausedForQueue || readsPausedForWritability)
        // Only a change goes to the channel: this runs for every read, and setting the
        // option walks into the channel each time even when nothing changes.
        guard autoRead != isReading else { return }
        isReading = autoRead
        try? context.channel.syncOptions?.setOption(.autoRead, value: autoRead)
    }

    // MARK: Actions

    /// Carries out a session's answer to one event, in the order ``SessionAction`` gives.
    private func perform(_ action: SessionAction, context: ChannelHandlerContext) {
        if let line = action.log { logger.log(level: line.level, "\(line.message)", metadata: line.metadata) }
        if let event = action.count { services.metrics.record(event) }
        if let (email, ticket) = action.revokeCode { services.otp.revoke(for: email, ticket: ticket) }
        switch action.loginTimer {
        case .start, .startResumeGrace:
            let timeout =
                action.loginTimer == .start
                ? services.configuration.limits.loginTimeout : SessionStateMachine.resumeGrace
            loginTimer?.cancel()
            loginTimer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) {
                self.loginTimer = nil
                self.perform(self.session?.loginTimedOut() ?? .none, context: context)
            }
        case .stop:
            loginTimer?.cancel()
            loginTimer = nil
        case nil:
            break
        }
        if !action.closes { send(action.lines, context: context) }
        if let command = action.submit {
            if case .say = command { services.metrics.messageSent() }
            services.log.submit(command)
        }
        switch action.code {
        case .mail(let email):
            mailCode(to: email, context: context)
        case .verify(let guess, let email):
            perform(session?.codeChecked(services.otp.verify(guess, for: email)) ?? .none, context: context)
        case nil:
            break
        }
        if let command = action.route, let local, let username = session?.username {
            let router = CommandRouter(session: local.id, username: username)
            let routed = router.route(
                command, hub: services.log, ignoring: &local.ignoring, lastPrivateSender: local.lastPrivateSender)
            if let routed { perform(routed, context: context) }
        }
        if action.closes {
            loginTimer?.cancel()
            loginTimer = nil
            writeDirect(action.lines, context: context)
            context.close(promise: nil)
        }
    }

    private func mailCode(to email: EmailAddress, context: ChannelHandlerContext) {
        let issued = services.otp.issue(for: email)
        session?.codeIssued(ticket: issued.ticket)
        let mail = OTPMail(
            recipient: email.value, code: issued.code, validForMinutes: services.configuration.otpExpirationMinutes)
        let mailer = services.mailer
        let sent = context.eventLoop.makePromise(of: Void.self)
        // Mail is slow, rare work: it runs as a task off the event loop, and only its
        // completion comes back here.
        sent.completeWithTask { try await mailer.send(mail) }
        sent.futureResult.assumeIsolated().whenComplete { result in
            self.codeMailed(result, context: context)
        }
    }

    private func codeMailed(_ result: Result<Void, any Error>, context: ChannelHandlerContext) {
        let succeeded: Bool
        switch result {
        case .failure(let error):
            succeeded = false
            services.metrics.mailHandedOver(false)
            logger.error(
                "Failed to send OTP mail", metadata: ["transport": "\(services.mailer.name)", "error": "\(error)"])
        case .success:
            succeeded = true
            services.metrics.mailHandedOver(true)
            logger.info("OTP mail sent", metadata: ["transport": "\(services.mailer.name)"])
        }
        perform(session?.codeMailed(success: succeeded) ?? .none, context: context)
        processQueue(context: context)
    }

    // MARK: Output

    /// Sends lines to this client. Once the user is online, their lines go through the
    /// loop shard like everything the hub sends them, so replies keep their place among
    /// room lines and notices.
    private func send(_ lines: [String], context: ChannelHandlerContext) {
        guard !lines.isEmpty else { return }
        if session?.username != nil, let local, let shard {
            // One buffer for the whole answer (`/help` is 40 lines): one write to deliver.
            shard.post(.direct(local.id, [HubState.encode(lines)]))
        } else {
            writeDirect(lines, context: context)
        }
    }

    private func writeDirect(_ lines: [String], context: ChannelHandlerContext) {
        let buffer = HubState.encode(lines)
        // Through the session when there is one: it orders these with what it sends.
        if let local {
            local.writeThroughPipeline(buffer)
        } else {
            context.write(wrapOutboundOut(buffer), promise: nil)
        }
        context.flush()
        local?.closeIfSendQueueExceeds(services.configuration.maxSendQueueBytes)
    }
}

@available(*, unavailable)
extension ConnectionHandler: Sendable {}
