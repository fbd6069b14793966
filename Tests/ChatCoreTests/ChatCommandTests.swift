import Testing

@testable import ChatCore

@Suite struct ChatCommandTests {
    @Test func plainTextIsAChatMessage() {
        #expect(ChatCommand.parse("hello /there") == .success(.say("hello /there")))
    }

    @Test(arguments: [
        ("/help", ChatCommand.help(nil)), ("/HELP", .help(nil)), ("/users", .users), ("/Rooms", .rooms),
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

    @Test func roomCommands() {
        #expect(ChatCommand.parse("/create #secret private") == .success(.create("#secret", isPrivate: true)))
        #expect(ChatCommand.parse("/create lounge") == .success(.create("lounge", isPrivate: false)))
        #expect(ChatCommand.parse("/create lounge PUBLIC") == .success(.create("lounge", isPrivate: false)))
        #expect(ChatCommand.parse("/create x secretive") == .failure(.usage("/create <room> [public|private]")))
        #expect(ChatCommand.parse("/invite bob") == .success(.invite("bob")))
        #expect(ChatCommand.parse("/invite") == .failure(.usage("/invite <user>")))
        #expect(ChatCommand.parse("/kick bob") == .success(.kick("bob")))
        #expect(ChatCommand.parse("/topic") == .success(.topic(nil)))
        #expect(ChatCommand.parse("/topic Board  games tonight") == .success(.topic("Board  games tonight")))
        #expect(ChatCommand.parse("/who") == .success(.who))
    }

    @Test func peopleCommands() {
        #expect(ChatCommand.parse("/me waves") == .success(.me("waves")))
        #expect(ChatCommand.parse("/me") == .failure(.usage("/me <action>")))
        #expect(ChatCommand.parse("/reply sure!") == .success(.reply("sure!")))
        #expect(ChatCommand.parse("/ignore") == .success(.ignore(nil)))
        #expect(ChatCommand.parse("/ignore bob") == .success(.ignore("bob")))
        #expect(ChatCommand.parse("/unignore bob") == .success(.unignore("bob")))
        #expect(ChatCommand.parse("/help kick") == .success(.help("/kick")))
        #expect(ChatCommand.parse("/help /KICK") == .success(.help("/kick")))
    }

    @Test func operatorCommands() {
        #expect(ChatCommand.parse("/ban bob") == .success(.ban("bob", minutes: nil)))
        #expect(ChatCommand.parse("/ban bob 15") == .success(.ban("bob", minutes: 15)))
        #expect(ChatCommand.parse("/ban bob soon") == .failure(.usage("/ban <user> [minutes]")))
        #expect(ChatCommand.parse("/ban bob 0") == .failure(.usage("/ban <user> [minutes]")))
        #expect(ChatCommand.parse("/unban bob@example.com") == .success(.unban("bob@example.com")))
        #expect(ChatCommand.parse("/bans") == .success(.bans))
        #expect(ChatCommand.parse("/wall maintenance at noon") == .success(.wall("maintenance at noon")))
    }

    @Test func everyCommandHasHelp() {
        for description in ChatCommand.catalogue {
            #expect(description.name.hasPrefix("/"))
            #expect(!description.summary.isEmpty && !description.details.isEmpty)
            #expect(ChatCommand.description(of: description.name)?.usage == description.usage)
        }
    }

    @Test func inputLinesAreTrimmedAndEmptyOnesIgnored() {
        #expect(InputLine.trimmed("  hi there \t") == "hi there")
        #expect(InputLine.trimmed(" \t ") == nil)
        #expect(InputLine.trimmed("") == nil)
    }
}
