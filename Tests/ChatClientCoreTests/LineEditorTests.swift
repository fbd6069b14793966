import Testing

@testable import ChatClientCore

struct LineEditorTests {
    private func editor(_ text: String, cursor: Int? = nil) -> LineEditor {
        var editor = LineEditor()
        editor.replace(with: text, cursor: cursor)
        return editor
    }

    @Test func typingAndMovingTheCursor() {
        var line = LineEditor()
        line.apply(.text("helo"))
        line.apply(.left)
        line.apply(.text("l"))
        #expect(line.text == "hello")
        #expect(line.cursor == 4)
        line.apply(.home)
        line.apply(.text(">"))
        line.apply(.end)
        line.apply(.text("!"))
        #expect(line.text == ">hello!")
        line.apply(.backspace)
        line.apply(.home)
        line.apply(.delete)
        #expect(line.text == "hello")
        #expect(line.cursor == 0)
        // Cursor moves stop at the ends.
        line.apply(.left)
        #expect(line.cursor == 0)
        line.apply(.end)
        line.apply(.right)
        #expect(line.cursor == 5)
    }

    @Test func wordsAndKills() {
        var line = editor("/msg alice  see you")
        line.apply(.deleteWord)
        #expect(line.text == "/msg alice  see ")
        line.apply(.deleteWord)
        #expect(line.text == "/msg alice  ")
        line.apply(.wordLeft)
        #expect(line.cursor == 5)
        line.apply(.wordRight)
        #expect(line.cursor == 10)
        line.apply(.deleteToEnd)
        #expect(line.text == "/msg alice")
        line.apply(.left)
        line.apply(.deleteToStart)
        #expect(line.text == "e")
        #expect(line.cursor == 0)
        line.apply(.interrupt)
        #expect(line.text == "")
    }

    @Test func charactersAreWhatAPersonSees() {
        var line = editor("née 👍🏽")
        line.apply(.backspace)
        #expect(line.text == "née ")
        line.apply(.left)
        line.apply(.backspace)
        #expect(line.text == "né ")
        // A paste with line breaks and tabs stays one line.
        line.apply(.text("a\tb\nc"))
        #expect(line.text == "néa bc ")
    }

    @Test func historyKeepsSentLinesAndTheDraft() {
        var line = LineEditor()
        line.apply(.text("first"))
        #expect(line.submit() == "first")
        line.apply(.text("second"))
        _ = line.submit()
        line.apply(.text("second"))
        _ = line.submit()  // the same line twice is kept once
        line.apply(.text("123456"))
        _ = line.submit(remember: false)  // a code is never kept
        #expect(line.history == ["first", "second"])
        line.apply(.text("draft"))
        line.apply(.up)
        #expect(line.text == "second")
        line.apply(.up)
        line.apply(.up)
        #expect(line.text == "first")
        line.apply(.down)
        line.apply(.down)
        #expect(line.text == "draft")
        line.apply(.down)
        #expect(line.text == "draft")
    }
}
