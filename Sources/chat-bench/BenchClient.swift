import Histogram
import NIOCore

/// One simulated user: logs in through the real protocol, then sends and checks chat lines.
/// Lives on its connection's event loop.
final class BenchClient: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// When this benchmark run began (monotonic nanoseconds, the clock lines are stamped with).
    static let runStarted = NIODeadline.now().uptimeNanoseconds

    let index: Int
    let username: String
    let email: String
    let room: String?
    let stats: LoopStats
    let mail: MailWatcher

    private var context: ChannelHandlerContext?
    private var partial: [UInt8] = []
    private var loginStep = LoginStep.emailPrompt
    private var loginDone: EventLoopPromise<Void>?
    /// How the login ended, kept for ``startLogin(_:)`` when it comes later: the server can
    /// finish a login before the task that connected gets to wait for it.
    private var loginEnded: Result<Void, any Error>?
    private var loginStarted: NIODeadline = .now()
    private(set) var loginLatency = TimeAmount.zero

    /// Sender side: this client's index among the senders, and its next sequence number.
    var senderIndex: Int?
    var nextSequence = 0
    var closedLoop = false
    var lineBytes = 64
    /// Receiver side: each sender's sequence numbers as this client saw them.
    private var sequences: SequenceCheck
    /// Excluded from statistics (a slow consumer in the `slow` mode).
    var isSlow = false
    private(set) var disconnectedAt: NIODeadline?
    /// `crowd` mode: the text being watched for, when this client first received a line
    /// holding it, and the room departures it has heard (how many, the last when).
    var watchedText: [UInt8]?
    private(set) var watchedArrivedAt: UInt64?
    private(set) var departuresHeard = 0
    private(set) var lastDepartureAt: UInt64 = 0

    enum LoginStep {
        case emailPrompt, codePrompt, waitingForCode, usernamePrompt, welcome, joined, done
    }

    init(index: Int, room: String?, senders: Int, stats: LoopStats, mail: MailWatcher, runID: String) {
        self.index = index
        self.username = "bench\(index)"
        self.email = "b\(index).\(runID)@bench.test"
        self.room = room
        self.stats = stats
        self.mail = mail
        self.sequences = SequenceCheck(senders: senders)
    }

    /// Whether the server has welcomed the user (and, with a room, let them in).
    var isLoggedIn: Bool { loginStep == .done }

    /// Completes `done` when the login ends (at once if it has ended already).
    func startLogin(_ done: EventLoopPromise<Void>) {
        if let loginEnded { return done.completeWith(loginEnded) }
        loginDone = done
    }

    private func endLogin(_ result: Result<Void, any Error>) {
        guard loginEnded == nil else { return }
        loginEnded = result
        loginLatency = .now() - loginStarted
        loginDone?.completeWith(result)
        loginDone = nil
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        loginStarted = .now()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        disconnectedAt = .now()
        endLogin(.failure(BenchError.closed("client \(index) disconnected during login (step \(loginStep))")))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let now = NIODeadline.now().uptimeNanoseconds
        buffer.withUnsafeReadableBytes { bytes in
            var start = 0
            for (offset, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
                if partial.isEmpty {
                    line(UnsafeRawBufferPointer(rebasing: bytes[start..<offset]), now: now)
                } else {
                    partial.append(contentsOf: bytes[start..<offset])
                    partial.withUnsafeBytes { line($0, now: now) }
                    partial.removeAll(keepingCapacity: true)
                }
                start = offset + 1
            }
            if start < bytes.count { partial.append(contentsOf: bytes[start...]) }
        }
    }

    // MARK: Lines

    private func line(_ bytes: UnsafeRawBufferPointer, now: UInt64) {
        if loginStep != .done {
            loginLine(String(decoding: bytes, as: UTF8.self))
            return
        }
        if let watchedText, watchedArrivedAt == nil, contains(bytes, watchedText) { watchedArrivedAt = now }
        // "*** benchN left the room ***": when the server let a client go (a client that
        // does not read cannot notice its own disconnection).
        if bytes.count > 4, bytes[0] == UInt8(ascii: "*") {
            let text = String(decoding: bytes, as: UTF8.self)
            if text.hasSuffix(" left the room ***") {
                stats.departed(String(text.dropFirst(4).dropLast(18)), at: now)
                departuresHeard += 1
                lastDepartureAt = now
            }
            return
        }
        // "[benchN]: s=S q=Q t=T ..." — a benchmark chat line.
        guard bytes.count > 4, bytes[0] == UInt8(ascii: "["), bytes[1] == UInt8(ascii: "b") else { return }
        // Lines stamped before this run started are history replayed on join (from an
        // earlier run): not deliveries of this one.
        guard let fields = ChatLineFields(bytes), fields.time >= Self.runStarted else { return }
        if !isSlow {
            stats.delivered(latencyNanos: now >= fields.time ? now - fields.time : 0)
            if fields.sender < sequences.senders {
                switch sequences.receive(sender: fields.sender, sequence: fields.sequence) {
                case .inOrder: break
                case .skipped(let count): stats.lost(count)
                case .late: stats.arrivedLate()
                case .duplicate: stats.duplicated()
                }
            }
        }
        if closedLoop, let me = senderIndex, fields.sender == me {
            send()
        }
    }

    /// Starts watching for `text` afresh (`nil`: stops).
    func watch(_ text: String?) {
        watchedText = text.map { Array($0.utf8) }
        watchedArrivedAt = nil
    }

    private func contains(_ bytes: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, bytes.count >= needle.count else { return false }
        for start in 0...(bytes.count - needle.count) where bytes[start] == needle[0] {
            var offset = 1
            while offset < needle.count, bytes[start + offset] == needle[offset] { offset += 1 }
            if offset == needle.count { return true }
        }
        return false
    }

    /// Lines still missing from each sender, given how many each sent.
    func missing(sent: [Int]) -> Int {
        sequences.missing(sent: sent)
    }

    private func loginLine(_ line: String) {
        if line.hasPrefix("ERROR:") {
            endLogin(.failure(BenchError.login("client \(index): \(line)")))
            return
        }
        switch loginStep {
        case .emailPrompt where line == "*** Enter your email address below ***":
            loginStep = .codePrompt
            write(email)
        case .codePrompt where line == "*** Enter OTP code: ***":
            loginStep = .waitingForCode
            guard let context else { return }
            mail.code(for: email, on: context.eventLoop).assumeIsolated().whenComplete { result in
                switch result {
                case .success(let code):
                    self.loginStep = .usernamePrompt
                    self.write(code)
                case .failure(let error):
                    self.endLogin(.failure(error))
                }
            }
        case .usernamePrompt where line.hasPrefix("*** Enter username"):
            loginStep = .welcome
            write(username)
        case .welcome where line == "*** Type /help for available commands. ***":
            if let room {
                loginStep = .joined
                write("/join \(room)")
            } else {
                finishLogin()
            }
        case .joined where line.hasPrefix("*** You joined "):
            finishLogin()
        default:
            break
        }
    }

    private func finishLogin() {
        loginStep = .done
        endLogin(.success(()))
    }

    // MARK: Sending

    /// Sends the next benchmark line, stamped with `time` (the intended send time at a
    /// fixed rate, which corrects for coordinated omission; now in a closed loop).
    func send(stampedAt time: UInt64 = NIODeadline.now().uptimeNanoseconds) {
        guard let me = senderIndex, let context else { return }
        var text = "s=\(me) q=\(nextSequence) t=\(time) "
        nextSequence += 1
        // Pad so the delivered line ("[bN]: " + text + "\n") is `lineBytes` long.
        let delivered = username.utf8.count + 4 + text.utf8.count + 1
        if delivered < lineBytes { text += String(repeating: "x", count: lineBytes - delivered) }
        var buffer = context.channel.allocator.buffer(capacity: text.utf8.count + 1)
        buffer.writeString(text)
        buffer.writeInteger(UInt8(ascii: "\n"))
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    func write(_ text: String) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: text.utf8.count + 1)
        buffer.writeString(text)
        buffer.writeInteger(UInt8(ascii: "\n"))
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    func stopReading() {
        isSlow = true
        try? context?.channel.syncOptions?.setOption(.autoRead, value: false)
    }
}

@available(*, unavailable)
extension BenchClient: Sendable {}

/// The numbers in a benchmark line, read without building strings.
struct ChatLineFields {
    let sender: Int
    let sequence: Int
    let time: UInt64

    init?(_ bytes: UnsafeRawBufferPointer) {
        var sender: Int?
        var sequence: Int?
        var time: UInt64?
        var index = 0
        let count = bytes.count
        while index + 2 < count {
            if bytes[index + 1] == UInt8(ascii: "="), index == 0 || bytes[index - 1] == UInt8(ascii: " ") {
                let key = bytes[index]
                var value: UInt64 = 0
                var cursor = index + 2
                while cursor < count, bytes[cursor] >= 0x30, bytes[cursor] <= 0x39 {
                    value = value &* 10 &+ UInt64(bytes[cursor] - 0x30)
                    cursor += 1
                }
                switch key {
                case UInt8(ascii: "s"): sender = Int(value)
                case UInt8(ascii: "q"): sequence = Int(value)
                case UInt8(ascii: "t"): time = value
                default: break
                }
                if sender != nil, sequence != nil, time != nil { break }
                index = cursor
            } else {
                index += 1
            }
        }
        guard let sender, let sequence, let time else { return nil }
        self.sender = sender
        self.sequence = sequence
        self.time = time
    }
}

enum BenchError: Error, CustomStringConvertible {
    case login(String)
    case closed(String)
    case mail(String)

    var description: String {
        switch self {
        case .login(let text), .closed(let text), .mail(let text): return text
        }
    }
}
