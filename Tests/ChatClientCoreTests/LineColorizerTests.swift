import ChatCore
import Testing

@testable import ChatClientCore

struct LineColorizerTests {
    @Test func everyKindOfServerLineIsRecognised() {
        #expect(ServerLineKind(ServerLine.goodbye) == .system)
        #expect(ServerLineKind(UserError.invalidEmail.line) == .error)
        #expect(ServerLineKind(ServerLine.chat(from: "alice", "hi [x]: y")) == .chat(from: "alice", text: "hi [x]: y"))
        #expect(
            ServerLineKind(ServerLine.privateMessage(from: "bob", "psst")) == .privateMessage(from: "bob", text: "psst")
        )
        #expect(ServerLineKind(ServerLine.privateMessageEcho(to: "bob", "hey")) == .privateEcho(to: "bob", text: "hey"))
        #expect(ServerLineKind(ServerLine.action(by: "carol", "waves")) == .action(by: "carol", text: "waves"))
        #expect(ServerLineKind("Online Users (2):") == .plain)
        #expect(ServerLineKind("  - alice (you)") == .plain)
        #expect(ServerLineKind("[not a name!]: x") == .plain)
    }

    @Test func coloursStylesAndTheBell() {
        let colors = LineColorizer(colors: true)
        let system = colors.render(ServerLine.goodbye, me: "alice")
        #expect(system == .init(text: "\u{1B}[36m*** Goodbye! ***\u{1B}[0m", bell: false))
        #expect(colors.render("ERROR: x", me: nil).text == "\u{1B}[1;31mERROR: x\u{1B}[0m")
        // Your own lines in your colour; others' names in theirs, the same every time.
        #expect(colors.render("[alice]: hi", me: "alice").text == "\u{1B}[1;32m[alice]\u{1B}[0m: hi")
        let bob = colors.render("[bob]: hi", me: "alice")
        #expect(bob.text == "\u{1B}[\(LineColorizer.nameStyle("bob"))m[bob]\u{1B}[0m: hi")
        #expect(LineColorizer.nameStyle("bob") == LineColorizer.nameStyle("BOB"))
        #expect(bob.bell == false)
        // Your name, as a word, in someone else's line: highlighted, with a bell.
        let mention = colors.render("[bob]: hey Alice, lunch?", me: "alice")
        #expect(mention.bell)
        #expect(mention.text.contains("\u{1B}[1;43;30mhey Alice, lunch?\u{1B}[0m"))
        #expect(colors.render("[bob]: malice aforethought", me: "alice").bell == false)
        // A private message rings too.
        #expect(colors.render(ServerLine.privateMessage(from: "bob", "psst"), me: "alice").bell)
        // Without colours the line is untouched (the bell stays).
        let plain = LineColorizer(colors: false)
        #expect(plain.render("[bob]: hey alice", me: "alice") == .init(text: "[bob]: hey alice", bell: true))
        #expect(plain.clientNotice("hint") == "-- hint")
    }

    @Test func theLoginGuideFollowsThePromptsAndHidesTheCode() {
        var guide = LoginGuide()
        #expect(guide.follow(ServerLine.welcome[0]) == nil)
        #expect(guide.follow(ServerLine.emailPrompt) != nil)
        #expect(guide.step == .email)
        #expect(guide.follow(ServerLine.otpPrompt) != nil)
        #expect(guide.inputIsSecret)
        _ = guide.follow(ServerLine.usernamePrompt(minLength: 3, maxLength: 16))
        #expect(guide.step == .username)
        #expect(!guide.inputIsSecret)
        _ = guide.follow(ServerLine.loggedIn(username: "alice", room: "#general")[0])
        #expect(guide.username == "alice")
    }

    @Test func thePromptLineScrollsAndMasks() {
        var editor = LineEditor()
        editor.replace(with: "0123456789abcdef")
        // Width 10: the prompt, 7 columns of text, one left free; the cursor (at the end)
        // stays in view.
        let line = PromptLine(editor: editor, prompt: "> ", width: 10, secret: false)
        #expect(line.text == "> abcdef")
        #expect(line.cursorColumn == 8)
        editor.apply(.home)
        #expect(PromptLine(editor: editor, prompt: "> ", width: 10, secret: false).text == "> 0123456")
        editor.replace(with: "123456")
        #expect(PromptLine(editor: editor, prompt: "code> ", width: 80, secret: true).text == "code> ******")
    }
}
