import ChatCore
import ChatMail
import Logging
import NIOCore

/// One client connection: runs its login state machine and turns chat commands into hub
/// calls. Lives on the connection's event loop; nothing else touches it.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = InboundLine
    typealias OutboundOut = ByteBuffer

    private let services: ServerServices
    private var machine: ConnectionStateMachine
    /// For log metadata; the logger itself is made when something is logged (rarely), so an
    /// idle connection does not keep a metadata dictionary alive.
    private var connectionID: SessionID = 0
    private var clientIP: String?

    private var session: LocalSession?
    private var shard: LoopShard?
    /// The client's address while it holds one of the IP's connection slots.
    private var address: ClientAddress?
    /// The name this connection is online under, once the hub accepted it.
    private var onlineAs: String?
    /// The code this connection asked for, revoked when the connection ends first.
    private var pendingCode: (email: EmailAddress, ticket: UInt64)?
    /// The names this user ignores, as they spell them (for `/ignore`'s list).
    private var ignoredNames: Set<String> = []

    /// Lines waiting to be handled: while the OTP mail is on its way, or while flood control
    /// spaces them out. Bounded by `MAX_QUEUED_LINES`; reading pauses while any wait.
    private var queue = LineQueue()
    private var floodControl: TokenBucket
    private var queueTimer: Scheduled<Void>?
    private var loginTimer: Scheduled<Void>?
    private var readsPausedForQueue = false
    /// Lines flood control has held back since the client last sent one it did not: one
    /// unbroken flood. With the lines still queued, bounded by `MAX_QUEUED_LINES`. (The
    /// queue alone cannot be the bound: reading pauses while lines wait, so how many are
    /// queued at once depends on how much one read cycle brings in.)
    private var linesHeldBack = 0
    private var readsPausedForWritability = false

    init(services: ServerServices) {
        let limits = services.configuration.limits
        self.services = services
        self.machine = ConnectionStateMachine(
            usernameRules: services.configuration.usernameRules,
            maxEmailAttempts: limits.maxEmailAttempts
        )
        self.floodControl = TokenBucket(
            burst: limits.messageBurst, perSecond: limits.messagesPerSecond, now: .now)
    }

    private var logger: Logger {
        var logger = services.logger
        logger[metadataKey: "connection"] = "\(connectionID)"
        if let clientIP { logger[metadataKey: "ip"] = "\(clientIP)" }
        if let onlineAs { logger[metadataKey: "user"] = "\(onlineAs)" }
        return logger
    }

    // MARK: Channel events

    func channelActive(context: ChannelHandlerContext) {
        let hub = services.hub
        let id = hub.makeSessionID()
        connectionID = id
        guard let remote = context.channel.remoteAddress, let address = ClientAddress(remote) else {
            logger.warning("Connection without a peer address; closing")
            context.close(promise: nil)
            return
        }
        clientIP = address.display
        guard let shard = hub.shard(for: context.eventLoop) else {
            logger.error("Connection on an event loop the hub does not serve; closing")
            context.close(promise: nil)
            return
        }

        let refusal: String
        switch hub.openConnection(ip: address.limitKey) {
        case .admitted:
            self.address = address
            let session = LocalSession(id: id, context: context)
            shard.attach(session)
            self.shard = shard
            self.session = session
            let timeout = services.configuration.limits.loginTimeout
            loginTimer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) {
                self.loginTimedOut(context: context)
            }
            logger.info("Client connected")
            writeDirect(ServerLine.welcome, context: context)
            context.fireChannelActive()
            return
        case .ipLimitReached:
            refusal = UserError.ipLimitReached(address.display).line
        case .banned:
            refusal = UserError.banned.line
        case .serverFull:
            refusal = UserError.serverFull.line
        case .connectingTooFast(let wait):
            refusal = UserError.connectingTooFast(retryAfterSeconds: wait.roundedUpSeconds).line
        case .shuttingDown:
            refusal = ServerLine.shuttingDown
        }
        logger.info("Connection refused", metadata: ["reason": "\(refusal)"])
        writeDirect([refusal], context: context)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        loginTimer?.cancel()
        queueTimer?.cancel()
        if let session, let shard {
            shard.detach(session)
            if session.disconnectedAsSlowConsumer {
                logger.warning("Disconnected slow consumer: more than MAX_SENDQ_BYTES queued for it")
            }
            if onlineAs != nil {
                services.hub.logout(session.id)
                onlineAs = nil
            }
        }
        if let pendingCode {
            services.otp.revoke(for: pendingCode.email, ticket: pendingCode.ticket)
            self.pendingCode = nil
        }
        machine.closed()
        session = nil
        queue.removeAll()
        if let address {
            self.address = nil
            services.hub.closeConnection(ip: address.limitKey)
            logger.info("Client disconnected")
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard session != nil else { return }
        switch unwrapInboundIn(data) {
        case .tooLong:
            send([UserError.lineTooLong(maximum: services.configuration.maxLineBytes).line], context: context)
        case .line(let text):
            // Empty lines are ignored, and cost nothing.
            guard let line = InputLine.trimmed(text) else { return }
            queue.append(String(line))
            guard queue.count + linesHeldBack <= services.configuration.limits.maxQueuedLines else {
                logger.warning(
                    "Disconnecting flooding client: over MAX_QUEUED_LINES lines held back",
                    metadata: ["queued": "\(queue.count)", "held_back": "\(linesHeldBack)"])
                writeDirect([UserError.flooding.line], context: context)
                context.close(promise: nil)
                return
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
        logger.debug("Connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    // MARK: Lines

    /// Handles queued lines in order, as fast as flood control allows: a burst passes at
    /// once, a flood is spaced out (nothing is dropped), and reading pauses meanwhile so the
    /// kernel's buffers, not the server's memory, hold what the client sends.
    /// - Parameter afterWait: flood control made these lines wait (they are counted in
    ///   ``linesHeldBack``); a line handled without waiting ends the count.
    private func processQueue(context: ChannelHandlerContext, afterWait: Bool = false) {
        while queueTimer == nil, !machine.isWaiting, session != nil, let line = queue.first {
            if let wait = floodControl.take(now: .now) {
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
            perform(machine.lineReceived(Substring(line)), context: context)
        }
        readsPausedForQueue = !queue.isEmpty
        updateReading(context: context)
    }

    private func updateReading(context: ChannelHandlerContext) {
        guard session != nil else { return }
        let autoRead = !(readsPausedForQueue || readsPausedForWritability)
        try? context.channel.syncOptions?.setOption(.autoRead, value: autoRead)
    }

    private func loginTimedOut(context: ChannelHandlerContext) {
        loginTimer = nil
        guard onlineAs == nil, session != nil else { return }
        logger.info("Login timed out")
        machine.closed()
        writeDirect([UserError.loginTimedOut.line], context: context)
        context.close(promise: nil)
    }

    private func perform(_ action: ConnectionStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .reply(let lines):
            send(lines, context: context)
        case .close(let lines):
            writeDirect(lines, context: context)
            context.close(promise: nil)
        case .sendCode(let email, let reply):
            send(reply, context: context)
            sendCode(to: email, context: context)
        case .verifyCode(let guess, let email):
            let verification = services.otp.verify(guess, for: email)
            switch verification {
            case .invalid:
                break  // still pending, and ours to revoke if the connection ends
            case .verified, .attemptsExhausted, .expired, .noCode:
                pendingCode = nil
            }
            perform(machine.codeChecked(verification), context: context)
        case .claimUsername(let username, let email):
            claim(username, email: email, context: context)
        case .command(let command):
            run(command, context: context)
        }
    }

    private func sendCode(to email: EmailAddress, context: ChannelHandlerContext) {
        if services.hub.isBanned(email: email) {
            logger.info("Login refused: e-mail address is banned")
            machine.closed()
            writeDirect([UserError.banned.line], context: context)
            context.close(promise: nil)
            return
        }
        guard let address else { return }
        let issued: OTPStore.IssuedCode
        switch services.otp.issue(for: email, client: address.limitKey) {
        case .success(let code):
            issued = code
        case .failure(let error):
            logger.notice("OTP request throttled", metadata: ["reason": "\(error.message)"])
            perform(machine.codeNotSent(error), context: context)
            return
        }
        pendingCode = (email, issued.ticket)
        let mail = OTPMail(
            recipient: email.value,
            code: issued.code,
            validForMinutes: services.configuration.otpExpirationMinutes
        )
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
        if case .failure(let error) = result {
            if let pendingCode {
                services.otp.revoke(for: pendingCode.email, ticket: pendingCode.ticket)
                self.pendingCode = nil
            }
            logger.error(
                "Failed to send OTP mail",
                metadata: ["transport": "\(services.mailer.name)", "error": "\(error)"]
            )
        } else {
            logger.info("OTP mail sent", metadata: ["transport": "\(services.mailer.name)"])
        }
        guard session != nil else { return }
        perform(machine.codeMailed(success: result.isSuccess), context: context)
        // Lines typed while the mail was on its way are handled now, in order.
        processQueue(context: context)
    }

    private func claim(_ username: String, email: EmailAddress, context: ChannelHandlerContext) {
        guard let session, let shard, let address else { return }
        let identity = ChatHub.Identity(
            username: username,
            email: email,
            ip: address.limitKey,
            isOperator: services.configuration.adminEmails.contains(email.key)
        )
        let result = services.hub.login(session.id, as: identity, shard: shard.index)
        if case .failure(.banned) = result {
            machine.closed()
            writeDirect([UserError.banned.line], context: context)
            context.close(promise: nil)
            return
        }
        if case .success(let name) = result {
            onlineAs = name
            loginTimer?.cancel()
            loginTimer = nil
            logger.info("User logged in", metadata: identity.isOperator ? ["operator": "true"] : [:])
        }
        perform(machine.usernameClaimed(result), context: context)
    }

    // MARK: Commands

    private func run(_ command: ChatCommand, context: ChannelHandlerContext) {
        guard let session, let username = onlineAs else { return }
        let hub = services.hub
        let id = session.id
        switch command {
        case .say(let text):
            guard let clean = cleanMessage(text, context: context) else { return }
            hub.say(id, line: ChatHub.encode(ServerLine.chat(from: username, clean)))
        case .me(let text):
            guard let clean = cleanMessage(text, context: context) else { return }
            hub.say(id, line: ChatHub.encode(ServerLine.action(by: username, clean)))
        case .help(nil):
            send(ServerLine.help, context: context)
        case .help(let name?):
            guard let description = ChatCommand.description(of: name) else {
                send([UserError.noSuchCommand(name).line], context: context)
                return
            }
            send(ServerLine.help(for: description), context: context)
        case .users:
            send(ServerLine.userList(hub.onlineUsers(), caller: username), context: context)
        case .rooms:
            send(ServerLine.roomList(hub.roomListings(for: id)), context: context)
        case .who:
            send(hub.members(of: id), context: context)
        case .join(let input):
            guard let room = RoomName(input) else { return send([UserError.invalidRoomName.line], context: context) }
            if let error = hub.join(id, room: room) { send([error.line], context: context) }
        case .create(let input, let isPrivate):
            guard let room = RoomName(input) else { return send([UserError.invalidRoomName.line], context: context) }
            if let error = hub.create(id, room: room, isPrivate: isPrivate) {
                send([error.line], context: context)
            } else {
                logger.info("Room created", metadata: ["room": "\(room)", "private": "\(isPrivate)"])
            }
        case .leave:
            if let error = hub.leave(id) { send([error.line], context: context) }
        case .invite(let target):
            // On success the hub has queued the confirmation.
            if case .failure(let error) = hub.invite(id, target: target) {
                send([error.line], context: context)
            }
        case .kick(let target):
            switch hub.kick(id, target: target) {
            case .success(let (user, room, present)):
                logger.notice("Moderation: kick", metadata: ["target": "\(user)", "room": "\(room)"])
                if !present { send([ServerLine.wasKicked(user, by: username)], context: context) }
            case .failure(let error):
                send([error.line], context: context)
            }
        case .topic(let text):
            var topic = text.map { TextSanitizer.sanitize($0) }
            if topic?.isEmpty == true { topic = nil }
            if let topic, topic.count > ChatHub.maximumTopicLength {
                return send([UserError.topicTooLong(maximum: ChatHub.maximumTopicLength).line], context: context)
            }
            switch hub.topic(id, set: topic) {
            case .success(let line?): send([line], context: context)
            case .success(nil): break
            case .failure(let error): send([error.line], context: context)
            }
        case .privateMessage(let target, let text):
            sendPrivateMessage(to: target, text, context: context)
        case .reply(let text):
            guard let target = session.lastPrivateSender else {
                return send([UserError.noOneToReply.line], context: context)
            }
            sendPrivateMessage(to: target, text, context: context)
        case .ignore(nil):
            send(ServerLine.ignoreList(ignoredNames.sorted { $0.lowercased() < $1.lowercased() }), context: context)
        case .ignore(let target?):
            guard let name = hub.onlineName(target) else {
                return send([UserError.userNotOnline(target).line], context: context)
            }
            guard name.lowercased() != username.lowercased() else {
                return send([UserError.notToYourself.line], context: context)
            }
            session.ignoring.insert(name.lowercased())
            ignoredNames.insert(name)
            send([ServerLine.nowIgnoring(name)], context: context)
        case .unignore(let target):
            guard session.ignoring.remove(target.lowercased()) != nil else {
                return send([UserError.notIgnoring(target).line], context: context)
            }
            let name = ignoredNames.first { $0.lowercased() == target.lowercased() } ?? target
            ignoredNames.remove(name)
            send([ServerLine.noLongerIgnoring(name)], context: context)
        case .ban(let target, let minutes):
            let minutes = minutes ?? Self.defaultBanMinutes
            let result = hub.ban(
                id, target: target, for: .seconds(minutes * 60),
                notice: ServerLine.youWereBanned(by: username, minutes: minutes),
                confirmation: { ServerLine.banned($0, minutes: minutes) })
            switch result {
            case .success(let (user, email, ip)):
                logger.notice(
                    "Moderation: ban",
                    metadata: [
                        "target": "\(user)", "target_email": "\(email)", "target_ip": "\(ip)", "minutes": "\(minutes)",
                    ])
            case .failure(let error):
                send([error.line], context: context)
            }
        case .unban(let target):
            if let error = hub.unban(id, target: target) {
                send([error.line], context: context)
            } else {
                logger.notice("Moderation: unban", metadata: ["target": "\(target)"])
                send([ServerLine.banLifted(target)], context: context)
            }
        case .bans:
            switch hub.bans(id) {
            case .success(let list): send(ServerLine.banList(list), context: context)
            case .failure(let error): send([error.line], context: context)
            }
        case .wall(let text):
            guard let clean = cleanMessage(text, context: context) else { return }
            if let error = hub.wall(id, text: clean) {
                send([error.line], context: context)
            } else {
                logger.notice("Moderation: wall", metadata: ["text": "\(clean)"])
            }
        case .quit:
            break  // handled by the state machine
        }
    }

    private static let defaultBanMinutes = 60

    /// The message made safe for other terminals, or `nil` (after telling the user) when
    /// it is too long or empty.
    private func cleanMessage(_ text: String, context: ChannelHandlerContext) -> String? {
        let clean = TextSanitizer.sanitize(text)
        guard clean.count <= ServerConfiguration.maximumMessageLength else {
            send([UserError.messageTooLong(maximum: ServerConfiguration.maximumMessageLength).line], context: context)
            return nil
        }
        return clean.isEmpty ? nil : clean
    }

    private func sendPrivateMessage(to target: String, _ text: String, context: ChannelHandlerContext) {
        guard let session, let clean = cleanMessage(text, context: context) else { return }
        // On success the hub has queued the echo.
        if let error = services.hub.privateMessage(from: session.id, to: TextSanitizer.sanitize(target), text: clean) {
            send([error.line], context: context)
        }
    }

    // MARK: Output

    /// Sends lines to this client. Once the user is online, their lines go through the
    /// loop shard like everything the hub sends them, so replies keep their place among
    /// room lines and notices.
    private func send(_ lines: [String], context: ChannelHandlerContext) {
        guard !lines.isEmpty else { return }
        if onlineAs != nil, let session, let shard {
            shard.post(.direct(session.id, lines.map(ChatHub.encode)))
        } else {
            writeDirect(lines, context: context)
        }
    }

    private func writeDirect(_ lines: [String], context: ChannelHandlerContext) {
        for line in lines {
            context.write(wrapOutboundOut(ChatHub.encode(line)), promise: nil)
        }
        context.flush()
        session?.closeIfSendQueueExceeds(services.configuration.maxSendQueueBytes)
    }
}

@available(*, unavailable)
extension ConnectionHandler: Sendable {}

extension Result {
    fileprivate var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
}

/// A FIFO of lines; removing from the front is O(1) amortised.
private struct LineQueue {
    private var lines: [String] = []
    private var head = 0

    var count: Int { lines.count - head }
    var isEmpty: Bool { count == 0 }
    var first: String? { head < lines.count ? lines[head] : nil }

    mutating func append(_ line: String) { lines.append(line) }

    mutating func removeFirst() {
        head += 1
        if head == lines.count {
            lines.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64 && head * 2 >= lines.count {
            lines.removeFirst(head)
            head = 0
        }
    }

    mutating func removeAll() {
        lines.removeAll()
        head = 0
    }
}
