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
    private var logger: Logger

    private var session: LocalSession?
    private var shard: LoopShard?
    /// The client IP while it holds one of the IP's connection slots.
    private var heldIP: String?
    /// The name this connection is online under, once the hub accepted it.
    private var onlineAs: String?
    /// The code this connection asked for, revoked when the connection ends first.
    private var pendingCode: (email: EmailAddress, ticket: UInt64)?
    /// Lines that arrived while the OTP mail was being sent (bounded).
    private var waitingLines: [String] = []
    private static let maximumWaitingLines = 16

    init(services: ServerServices) {
        self.services = services
        self.machine = ConnectionStateMachine(usernameRules: services.configuration.usernameRules)
        self.logger = services.logger
    }

    // MARK: Channel events

    func channelActive(context: ChannelHandlerContext) {
        let hub = services.hub
        let id = hub.makeSessionID()
        logger[metadataKey: "connection"] = "\(id)"
        guard let ip = context.channel.remoteAddress?.ipAddress else {
            logger.warning("Connection without a peer address; closing")
            context.close(promise: nil)
            return
        }
        logger[metadataKey: "ip"] = "\(ip)"

        switch hub.openConnection(ip: ip) {
        case .admitted:
            heldIP = ip
        case .ipLimitReached:
            logger.info("Connection refused: per-IP limit reached")
            writeDirect([UserError.ipLimitReached(ip).line], context: context)
            context.close(promise: nil)
            return
        case .shuttingDown:
            writeDirect([ServerLine.shuttingDown], context: context)
            context.close(promise: nil)
            return
        }

        let shard = hub.shard(for: context.eventLoop)
        let session = LocalSession(id: id, context: context)
        shard.attach(session)
        self.shard = shard
        self.session = session
        logger.info("Client connected")
        writeDirect(ServerLine.welcome, context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let session, let shard {
            shard.detach(session)
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
        if let ip = heldIP {
            heldIP = nil
            services.hub.closeConnection(ip: ip)
            logger.info("Client disconnected")
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .tooLong:
            send([UserError.lineTooLong(maximum: services.configuration.maxLineBytes).line], context: context)
        case .line(let text):
            guard session != nil else { return }
            if machine.isWaiting {
                if waitingLines.count < Self.maximumWaitingLines { waitingLines.append(text) }
                return
            }
            handle(text, context: context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Past the high watermark (MAX_SENDQ_BYTES) the client is not reading what it is
        // sent; it must not make the server hold ever more memory for it.
        if !context.channel.isWritable {
            logger.warning("Disconnecting slow consumer: send queue over MAX_SENDQ_BYTES")
            context.close(promise: nil)
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("Connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    // MARK: Lines

    private func handle(_ text: String, context: ChannelHandlerContext) {
        guard let line = InputLine.trimmed(text) else { return }
        perform(machine.lineReceived(line), context: context)
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
        let issued = services.otp.issue(for: email)
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
        while !machine.isWaiting, session != nil, !waitingLines.isEmpty {
            handle(waitingLines.removeFirst(), context: context)
        }
    }

    private func claim(_ username: String, email: EmailAddress, context: ChannelHandlerContext) {
        guard let session, let shard else { return }
        let result = services.hub.login(session.id, username: username, shard: shard.index)
        if case .success(let name) = result {
            onlineAs = name
            logger[metadataKey: "user"] = "\(name)"
            logger.info("User logged in")
        }
        perform(machine.usernameClaimed(result), context: context)
    }

    // MARK: Commands

    private func run(_ command: ChatCommand, context: ChannelHandlerContext) {
        guard let session, let username = onlineAs else { return }
        let hub = services.hub
        switch command {
        case .say(let text):
            let clean = TextSanitizer.sanitize(text)
            guard clean.count <= ServerConfiguration.maximumMessageLength else {
                send([UserError.messageTooLong(maximum: ServerConfiguration.maximumMessageLength).line], context: context)
                return
            }
            guard !clean.isEmpty else { return }
            hub.say(session.id, line: ChatHub.encode(ServerLine.chat(from: username, clean)))
        case .help:
            send(ServerLine.help, context: context)
        case .users:
            send(ServerLine.userList(hub.onlineUsernames(), caller: username), context: context)
        case .rooms:
            send(ServerLine.roomList(hub.roomListings(for: session.id)), context: context)
        case .join(let input):
            guard let room = RoomName(input) else {
                send([UserError.invalidRoomName.line], context: context)
                return
            }
            if let error = hub.join(session.id, room: room) { send([error.line], context: context) }
        case .leave:
            if let error = hub.leave(session.id) { send([error.line], context: context) }
        case .privateMessage(let target, let text):
            let clean = TextSanitizer.sanitize(text)
            guard clean.count <= ServerConfiguration.maximumMessageLength else {
                send([UserError.messageTooLong(maximum: ServerConfiguration.maximumMessageLength).line], context: context)
                return
            }
            switch hub.privateMessage(from: session.id, to: TextSanitizer.sanitize(target), text: clean) {
            case .success(let recipient):
                send([ServerLine.privateMessageEcho(to: recipient, clean)], context: context)
            case .failure(let error):
                send([error.line], context: context)
            }
        case .quit:
            break  // handled by the state machine
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
