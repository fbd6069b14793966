import CTerminal
import ChatClientCore
import ChatCore
import Foundation
import NIOCore
import NIOPosix
import UnixSignals

/// The client on a terminal: server lines scroll above, the line being typed stays at the
/// bottom, intact, with line editing, history and completion; colours and a bell when
/// someone writes your name or sends you a private message.
final class InteractiveClient {
    private let options: ClientOptions
    private var editor = LineEditor()
    private var decoder = KeyDecoder()
    private var roster = Roster()
    private var guide = LoginGuide()
    private let colorizer: LineColorizer
    private var room: String?
    private var width = 80
    /// The user asked to leave (`/quit`, Ctrl-D): the server's close is the end, not a loss.
    private var leaving = false
    /// Whether any connection of this run has had a line from the server.
    private var heardFromServer = false
    /// Staying signed in: the token kept for this server, used and renewed.
    private var signIn: StayingSignedIn
    private let tokenFile: ResumeTokenFile?

    init(options: ClientOptions) {
        self.options = options
        self.colorizer = LineColorizer(colors: options.colors)
        let file = options.remember ? ResumeTokenFile(endpoint: options.endpoint, tls: options.tls != nil) : nil
        self.tokenFile = file
        self.signIn = StayingSignedIn(token: file?.read(), remembers: file != nil)
    }

    func run() async throws -> Int32 {
        guard chat_terminal_enter_raw(0) == 0 else {
            Output.error("cannot put the terminal in raw mode")
            return 1
        }
        defer {
            Output.write("\r\u{1B}[2K")
            chat_terminal_restore()
        }
        updateWidth()
        let (events, continuation) = AsyncStream.makeStream(of: ClientEvent.self)
        let group = MultiThreadedEventLoopGroup.singleton
        StandardInput.start(continuation)
        let resizes = Task {
            for await _ in await UnixSignalsSequence(trapping: .sigwinch) { continuation.yield(.resized) }
        }
        defer { resizes.cancel() }

        var pause = Duration.seconds(1)
        while true {
            notice("Connecting to \(options.endpoint)\(options.tls == nil ? "" : " with TLS")...")
            var connection: ServerConnection?
            do {
                connection = try await ServerConnection.connect(options, group: group, events: continuation)
                pause = .seconds(1)
            } catch {
                notice("Cannot connect to \(options.endpoint): \(ConnectionFailure.describe(error))")
            }
            if let connection {
                guide = LoginGuide()
                signIn.connected()
                let outcome = await session(connection, events: events)
                if case .ended(let code) = outcome { return code }
            }
            guard options.reconnect else { return 1 }
            notice("Connecting again in \(pause.components.seconds) s; Ctrl-C or Ctrl-D gives up.")
            let timer = Task { [pause] in
                try? await Task.sleep(for: pause)
                continuation.yield(.retry)
            }
            guard await waitToRetry(events) else {
                timer.cancel()
                return 1
            }
            pause = min(pause * 2, .seconds(30))
        }
    }

    /// Between connections: typing goes on; Ctrl-C or Ctrl-D gives up.
    /// - Returns: `false` when the user gave up.
    private func waitToRetry(_ events: AsyncStream<ClientEvent>) async -> Bool {
        for await event in events {
            switch event {
            case .retry:
                return true
            case .input(let bytes):
                for key in decoder.decode(bytes) {
                    if key == .interrupt || key == .endOfInput { return false }
                    if key != .enter && key != .tab { editor.apply(key) }
                }
                redrawPrompt()
            case .inputClosed:
                return false
            case .resized:
                updateWidth()
                redrawPrompt()
            case .line, .disconnected, .refused, .closedUnheard:
                break
            }
        }
        return false
    }

    private enum Outcome {
        /// Exit with this code.
        case ended(Int32)
        /// The connection was lost.
        case lost
    }

    private func session(_ connection: ServerConnection, events: AsyncStream<ClientEvent>) async -> Outcome {
        redrawPrompt()
        for await event in events {
            switch event {
            case .line(let line):
                heardFromServer = true
                let (steps, visible) = signIn.follow(TextSanitizer.sanitize(line))
                if visible { show(line) }
                carryOut(steps, connection: connection)
            case .disconnected(let reason):
                return connectionLost(reason: reason)
            case .refused(let message):
                notice("Cannot chat with \(options.endpoint): \(message).")
                keepUnsentLine()
                return .ended(1)
            case .closedUnheard:
                // Once this server has talked to us, a silent close is a proxy whose server
                // behind it just died (it has not yet noticed): try again, as for a lost line.
                if options.reconnect, heardFromServer {
                    return connectionLost(reason: ClientEvent.closedUnheardReason)
                }
                notice("Cannot chat with \(options.endpoint): \(ClientEvent.closedUnheardReason).")
                keepUnsentLine()
                return .ended(1)
            case .input(let bytes):
                for key in decoder.decode(bytes) {
                    if let outcome = handle(key, connection: connection) { return outcome }
                }
            case .inputClosed:
                connection.send("/quit")
                leaving = true
            case .resized:
                updateWidth()
                redrawPrompt()
            case .retry:
                break
            }
        }
        return .ended(0)
    }

    private func connectionLost(reason: String?) -> Outcome {
        if leaving { return .ended(0) }
        notice("Connection lost" + (reason.map { ": \($0)" } ?? "") + ".")
        // With --reconnect the line stays being typed for the next connection.
        if !options.reconnect { keepUnsentLine() }
        guide = LoginGuide()
        room = nil
        return .lost
    }

    /// - Returns: an outcome when the key ends the session.
    private func handle(_ key: Key, connection: ServerConnection) -> Outcome? {
        switch key {
        case .enter:
            let secret = guide.inputIsSecret
            let line = editor.submit(remember: !secret)
            if guide.username == nil {
                // The server does not echo login answers: keep them on screen (the code masked).
                printAbove(colorizer.clientNotice("> " + (secret ? String(repeating: "*", count: line.count) : line)))
            }
            let command = line.trimmingCharacters(in: .whitespaces).lowercased()
            if command == "/quit" || command.hasPrefix("/logout") { leaving = true }
            carryOut(signIn.userSent(command), connection: connection)
            connection.send(line)
        case .endOfInput:
            if editor.characters.isEmpty {
                leaving = true
                connection.send("/quit")
            } else {
                editor.apply(.delete)
            }
        case .tab:
            complete()
        case .redraw:
            Output.write("\u{1B}[2J\u{1B}[H")
        default:
            editor.apply(key)
        }
        redrawPrompt()
        return nil
    }

    private func complete() {
        guard guide.username != nil, let result = Completer.complete(editor, roster: roster) else {
            Output.write("\u{07}")
            return
        }
        editor.replace(with: result.line, cursor: result.cursor)
        if !result.candidates.isEmpty { printAbove(colorizer.clientNotice(result.candidates.joined(separator: "  "))) }
    }

    /// What staying signed in asks for: a line sent for the user, the token kept or forgotten.
    private func carryOut(_ steps: [StayingSignedIn.Step], connection: ServerConnection) {
        for step in steps {
            switch step {
            case .send(let line): connection.send(line)
            case .store(let token):
                do {
                    try tokenFile?.write(token)
                } catch {
                    notice(
                        "Cannot keep the resume token in \(tokenFile?.path ?? "its file"): you will log in again next time."
                    )
                }
            case .forget: tokenFile?.remove()
            case .notice(let text): notice(text)
            }
        }
    }

    // MARK: Screen

    private func show(_ received: String) {
        // The server sanitises what users write, but a client does not trust a server with
        // its terminal.
        let line = TextSanitizer.sanitize(received)
        roster.learn(from: line)
        if line.hasPrefix("*** You joined "), line.hasSuffix(" ***") {
            room = String(line.dropFirst("*** You joined ".count).dropLast(4))
        } else if line.hasPrefix("*** You left "), let range = line.range(of: " and returned to ") {
            room = String(line[range.upperBound...].dropLast(4))
        }
        let hint = guide.follow(line)
        if let me = guide.username { roster.insert(me) }
        let rendered = colorizer.render(line, me: guide.username)
        printAbove(rendered.text, bell: rendered.bell)
        if let hint { printAbove(colorizer.clientNotice(hint)) }
    }

    /// The client is exiting with a line typed and not sent: it stays on the screen, above
    /// the prompt that is cleared (a code being typed is not shown).
    private func keepUnsentLine() {
        guard !editor.text.isEmpty, !guide.inputIsSecret else { return }
        notice("Not sent: \(editor.text)")
    }

    private func notice(_ text: String) {
        printAbove(colorizer.clientNotice(text))
    }

    /// Prints a line above the prompt line and draws the prompt again below it.
    private func printAbove(_ text: String, bell: Bool = false) {
        Output.write("\r\u{1B}[2K" + text + "\r\n" + (bell ? "\u{07}" : ""))
        redrawPrompt()
    }

    private func redrawPrompt() {
        let prompt: String
        switch guide.step {
        case .connecting: prompt = "> "
        case .email: prompt = "e-mail> "
        case .code: prompt = "code> "
        case .username: prompt = "username> "
        case .chatting: prompt = "\(room ?? "")> "
        }
        let line = PromptLine(editor: editor, prompt: prompt, width: width, secret: guide.inputIsSecret)
        var output = "\r\u{1B}[2K" + line.text + "\r"
        if line.cursorColumn > 0 { output += "\u{1B}[\(line.cursorColumn)C" }
        Output.write(output)
    }

    private func updateWidth() {
        var columns: Int32 = 0
        var rows: Int32 = 0
        chat_terminal_size(1, &columns, &rows)
        if columns > 0 { width = Int(columns) }
    }
}
