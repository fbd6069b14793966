import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// One SMTP conversation (RFC 5321): greeting, EHLO (HELO fallback), STARTTLS and EHLO
/// again, AUTH PLAIN or LOGIN, then optionally one message, then QUIT.
///
/// Runs as sequential async code over an `NIOAsyncChannel`; nothing blocks an event loop.
/// Every wait for a reply is bounded by the step timeout and the total deadline: when
/// one passes, the channel is closed, which ends the wait.
struct SMTPSession {
    let settings: SMTPSettings
    let tlsContext: NIOSSLContext
    let group: any EventLoopGroup

    /// An envelope and its data.
    struct Envelope {
        var sender: String
        var recipient: String
        var data: String
    }

    /// Connects, negotiates TLS, authenticates, sends `envelope` if given, and quits.
    func run(sending envelope: Envelope?) async throws {
        let deadline = ContinuousClock.now + settings.totalTimeout
        let channel = try await connect()
        let timer = StepTimer(channel: channel.channel)
        do {
            try await channel.executeThenClose { inbound, outbound in
                var conversation = Conversation(
                    replies: inbound.makeAsyncIterator(),
                    outbound: outbound,
                    timer: timer,
                    stepTimeout: settings.stepTimeout,
                    deadline: deadline
                )
                try await converse(&conversation, channel: channel.channel, envelope: envelope)
            }
        } catch let error as SMTPError {
            throw error
        } catch let error as NIOSSLError {
            throw SMTPError.tlsFailed("\(error)")
        } catch let error as BoringSSLError {
            throw SMTPError.tlsFailed("\(error)")
        } catch {
            if timer.fired { throw SMTPError.timedOut(stage: timer.stage) }
            throw SMTPError.connectionFailed("\(error)")
        }
    }

    private func connect() async throws -> NIOAsyncChannel<SMTPReply, ByteBuffer> {
        let settings = self.settings
        let tlsContext = self.tlsContext
        do {
            return try await ClientBootstrap(group: group)
                .connectTimeout(TimeAmount(settings.stepTimeout))
                .connect(host: settings.host, port: settings.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if settings.security == .tls {
                            try channel.pipeline.syncOperations.addHandler(
                                try NIOSSLClientHandler(context: tlsContext, serverHostname: settings.tlsServerName))
                        }
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(SMTPReplyDecoder()))
                        return try NIOAsyncChannel<SMTPReply, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw SMTPError.connectionFailed("\(settings.host):\(settings.port): \(error)")
        }
    }

    private func converse(
        _ conversation: inout Conversation,
        channel: any Channel,
        envelope: Envelope?
    ) async throws {
        try await conversation.expect(220, stage: "greeting")
        var capabilities = try await hello(&conversation)

        if settings.security == .starttls {
            guard capabilities.contains("STARTTLS") else { throw SMTPError.startTLSNotOffered }
            try await conversation.command("STARTTLS", expect: 220, stage: "STARTTLS")
            let tlsContext = self.tlsContext
            let serverName = settings.tlsServerName
            do {
                // The handlers are made and added on the channel's loop: they are not Sendable.
                let handshake = try await channel.eventLoop.submit {
                    let tls = try NIOSSLClientHandler(context: tlsContext, serverHostname: serverName)
                    let watcher = TLSHandshakeWatcher(promise: channel.eventLoop.makePromise())
                    try channel.pipeline.syncOperations.addHandler(tls, position: .first)
                    try channel.pipeline.syncOperations.addHandler(watcher, position: .after(tls))
                    return watcher.handshake
                }.get()
                // Wait for the handshake before EHLO: otherwise a failed handshake can show
                // up as that write failing on the closed channel instead of as the TLS error.
                try await handshake.get()
            } catch {
                throw SMTPError.tlsFailed("\(error)")
            }
            // RFC 3207: forget what was learnt before TLS and ask again.
            capabilities = try await hello(&conversation)
        }

        if settings.authenticates {
            guard settings.security != .none || settings.isLoopbackHost else { throw SMTPError.plainTextRefused }
            try await authenticate(&conversation, capabilities: capabilities)
        }

        if let envelope {
            try await conversation.command("MAIL FROM:<\(envelope.sender)>", expect: 250, stage: "MAIL FROM")
            try await conversation.command("RCPT TO:<\(envelope.recipient)>", expect: 250, 251, stage: "RCPT TO")
            try await conversation.command("DATA", expect: 354, stage: "DATA")
            try await conversation.send(Self.dotStuffed(envelope.data) + ".\r\n")
            try await conversation.expect(250, stage: "end of DATA")
        }
        // A failed QUIT changes nothing: the mail is accepted or nothing was sent.
        try? await conversation.command("QUIT", expect: 221, stage: "QUIT")
    }

    /// EHLO, or HELO for an old server. Returns the upper-cased capability lines.
    private func hello(_ conversation: inout Conversation) async throws -> [String] {
        try await conversation.send("EHLO \(settings.heloName)\r\n")
        let reply = try await conversation.reply(stage: "EHLO")
        if reply.code == 250 {
            return reply.lines.dropFirst().map { $0.uppercased() }
        }
        try await conversation.command("HELO \(settings.heloName)", expect: 250, stage: "HELO")
        return []
    }

    private func authenticate(_ conversation: inout Conversation, capabilities: [String]) async throws {
        let mechanisms =
            capabilities
            .filter { $0.hasPrefix("AUTH ") || $0.hasPrefix("AUTH=") }
            .flatMap { $0.dropFirst(5).split(separator: " ").map(String.init) }
        let username = Data(settings.username.utf8).base64EncodedString()
        let password = Data(settings.password.utf8).base64EncodedString()
        let reply: SMTPReply
        if mechanisms.contains("PLAIN") {
            let token = Data("\0\(settings.username)\0\(settings.password)".utf8).base64EncodedString()
            try await conversation.send("AUTH PLAIN \(token)\r\n")
            reply = try await conversation.reply(stage: "AUTH PLAIN")
        } else if mechanisms.contains("LOGIN") {
            try await conversation.command("AUTH LOGIN", expect: 334, stage: "AUTH LOGIN")
            try await conversation.send("\(username)\r\n")
            let prompt = try await conversation.reply(stage: "AUTH LOGIN user name")
            guard prompt.code == 334 else {
                throw SMTPError.authenticationRejected(code: prompt.code, text: prompt.text)
            }
            try await conversation.send("\(password)\r\n")
            reply = try await conversation.reply(stage: "AUTH LOGIN password")
        } else {
            throw SMTPError.authenticationNotOffered
        }
        guard reply.code == 235 else { throw SMTPError.authenticationRejected(code: reply.code, text: reply.text) }
    }

    /// CRLF line endings, a `.` doubled at the start of any line (RFC 5321 4.5.2), and a
    /// final CRLF. Works on bytes: in Swift, "\r\n" is one `Character`.
    static func dotStuffed(_ data: String) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(data.utf8.count + 16)
        var atLineStart = true
        var previous: UInt8 = 0
        for byte in data.utf8 {
            if byte == UInt8(ascii: "\n") {
                if previous != UInt8(ascii: "\r") { output.append(UInt8(ascii: "\r")) }
                output.append(byte)
                atLineStart = true
            } else {
                if atLineStart && byte == UInt8(ascii: ".") { output.append(byte) }
                atLineStart = false
                output.append(byte)
            }
            previous = byte
        }
        if !atLineStart {
            if previous == UInt8(ascii: "\r") { output.removeLast() }
            output.append(contentsOf: [UInt8(ascii: "\r"), UInt8(ascii: "\n")])
        }
        return String(decoding: output, as: UTF8.self)
    }
}

extension SMTPSettings {
    /// The name checked against the server certificate (and sent as SNI).
    var tlsServerName: String? {
        // An IP literal can't be an SNI name; certificates for relays name hosts.
        host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
    }
}

/// The request/reply exchange, with each wait bounded.
private struct Conversation {
    var replies: NIOAsyncChannelInboundStream<SMTPReply>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let timer: StepTimer
    let stepTimeout: Duration
    let deadline: ContinuousClock.Instant

    mutating func send(_ text: String) async throws {
        try await outbound.write(ByteBuffer(string: text))
    }

    mutating func reply(stage: String) async throws -> SMTPReply {
        let remaining = deadline - ContinuousClock.now
        guard remaining > .zero else { throw SMTPError.timedOut(stage: stage) }
        timer.arm(after: min(stepTimeout, remaining), stage: stage)
        defer { timer.disarm() }
        do {
            guard let reply = try await replies.next() else {
                if timer.fired { throw SMTPError.timedOut(stage: stage) }
                throw SMTPError.connectionClosed(stage: stage)
            }
            return reply
        } catch let error as SMTPError {
            throw error
        } catch {
            if timer.fired { throw SMTPError.timedOut(stage: stage) }
            throw error
        }
    }

    mutating func expect(_ codes: Int..., stage: String) async throws {
        let reply = try await reply(stage: stage)
        guard codes.contains(reply.code) else {
            throw SMTPError.unexpectedReply(stage: stage, code: reply.code, text: reply.text)
        }
    }

    mutating func command(_ line: String, expect codes: Int..., stage: String) async throws {
        try await send(line + "\r\n")
        let reply = try await reply(stage: stage)
        guard codes.contains(reply.code) else {
            throw SMTPError.unexpectedReply(stage: stage, code: reply.code, text: reply.text)
        }
    }
}

/// Closes the channel when a wait takes too long, which ends the wait.
private final class StepTimer: Sendable {
    private struct State {
        var task: Scheduled<Void>?
        var fired = false
        var stage = ""
    }

    private let channel: any Channel
    private let state = NIOLockedValueBox(State())

    init(channel: any Channel) {
        self.channel = channel
    }

    func arm(after timeout: Duration, stage: String) {
        let channel = self.channel
        let task = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) { [self] in
            state.withLockedValue { $0.fired = true }
            channel.close(promise: nil)
        }
        state.withLockedValue { state in
            state.task?.cancel()
            state.task = task
            state.stage = stage
        }
    }

    func disarm() {
        state.withLockedValue { state in
            state.task?.cancel()
            state.task = nil
        }
    }

    var fired: Bool { state.withLockedValue { $0.fired } }
    var stage: String { state.withLockedValue { $0.stage } }
}

/// Sits behind a TLS handler: its future succeeds when the handshake completes and fails
/// with the handshake's error (or when the connection closes first).
private final class TLSHandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let promise: EventLoopPromise<Void>
    private var settled = false

    var handshake: EventLoopFuture<Void> { promise.futureResult }

    init(promise: EventLoopPromise<Void>) {
        self.promise = promise
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSUserEvent { settle(nil) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        settle(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        settle(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        settle(ChannelError.ioOnClosedChannel)
    }

    private func settle(_ error: (any Error)?) {
        guard !settled else { return }
        settled = true
        if let error { promise.fail(error) } else { promise.succeed() }
    }
}
