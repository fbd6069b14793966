import Testing

@testable import ChatCore

@Suite struct ChatCommandTests {
    @Test func plainTextIsAChatMessage() {
        #expect(ChatCommand.parse("hello /there") == .success(.say("hello /there")))
    }

    @Test(arguments: [
        ("/help", ChatCommand.help), ("/HELP", .help), ("/users", .users), ("/Rooms", .rooms),
        ("/leave", .leave), ("/quit", .quit), ("/QUIT", .quit),
    ])
    func commandsAreCaseInsensitive(input: String, expected: ChatCommand) {
        #expect(ChatCommand.parse(Substring(input)) == .success(expected))
    }

    @Test func joinTakesOneRoom() {
        #expect(ChatCommand.parse("/join #gaming") == .success(.join("#gaming")))
        #expect(ChatCommand.parse("/JOIN   gaming") == .success(.join("gaming")))
        #expect(ChatCommand.parse("/join") == .failure(.usage("/join <room>")))
        #expect(ChatCommand.parse("/join a b") == .failure(.usage("/join <room>")))
    }

    @Test func msgNeedsTargetAndText() {
        #expect(ChatCommand.parse("/msg bob hi  there") == .success(.privateMessage(to: "bob", text: "hi  there")))
        #expect(ChatCommand.parse("/msg bob") == .failure(.usage("/msg <username> <message>")))
        #expect(ChatCommand.parse("/msg") == .failure(.usage("/msg <username> <message>")))
        #expect(UserError.usage("/msg <username> <message>").line == "ERROR: Usage: /msg <username> <message>")
    }

    @Test func unknownCommandKeepsTheWordAsTyped() {
        #expect(ChatCommand.parse("/Foo bar") == .failure(.unknownCommand("/Foo")))
        #expect(
            UserError.unknownCommand("/foo").line
                == "ERROR: Unknown command: /foo. Type /help for available commands."
        )
    }

    @Test func inputLinesAreTrimmedAndEmptyOnesIgnored() {
        #expect(InputLine.trimmed("  hi there \t") == "hi there")
        #expect(InputLine.trimmed(" \t ") == nil)
        #expect(InputLine.trimmed("") == nil)
    }
}
