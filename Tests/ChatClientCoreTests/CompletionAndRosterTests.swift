import ChatCore
import Testing

@testable import ChatClientCore

struct CompletionAndRosterTests {
    @Test func theRosterLearnsFromUsersJoinsLeavesAndSpeakers() {
        var roster = Roster()
        for line in ServerLine.userList([("alice", false, nil), ("Bob", true, "lunch")], caller: "alice") {
            roster.learn(from: line)
        }
        #expect(roster.all == ["alice", "Bob"])
        roster.learn(from: ServerLine.joinedRoom("carol"))
        roster.learn(from: ServerLine.chat(from: "dave", "hi"))
        roster.learn(from: ServerLine.action(by: "erin", "waves"))
        roster.learn(from: ServerLine.leftRoom("Bob"))
        #expect(roster.all == ["alice", "carol", "dave", "erin"])
        roster.learn(from: ServerLine.renamed(from: "dave", to: "David"))
        #expect(roster.all == ["alice", "carol", "David", "erin"])
        // A new /users list replaces what was known.
        for line in ServerLine.userList([("zed", false, nil)], caller: "zed") { roster.learn(from: line) }
        #expect(roster.all == ["zed"])
    }

    @Test func tabCompletesCommandsAndNames() throws {
        var roster = Roster()
        for name in ["alice", "albert", "bob"] { roster.insert(name) }
        var editor = LineEditor()
        editor.replace(with: "/jo")
        var result = try #require(Completer.complete(editor, roster: roster))
        #expect(result.line == "/join ")
        #expect(result.candidates == [])

        editor.replace(with: "/msg b")
        result = try #require(Completer.complete(editor, roster: roster))
        #expect(result.line == "/msg bob ")

        // Several: their common prefix, and the list.
        editor.replace(with: "hi al")
        result = try #require(Completer.complete(editor, roster: roster))
        #expect(result.line == "hi al")
        #expect(result.candidates == ["albert", "alice"])

        // At the start of a line a name is addressed; in the middle of a line, completion
        // keeps what follows the cursor.
        editor.replace(with: "ali")
        #expect(try #require(Completer.complete(editor, roster: roster)).line == "alice: ")
        editor.replace(with: "hey BO how", cursor: 6)
        result = try #require(Completer.complete(editor, roster: roster))
        #expect(result.line == "hey bob  how")
        #expect(result.cursor == 8)

        editor.replace(with: "nobody")
        #expect(Completer.complete(editor, roster: roster) == nil)
        editor.replace(with: "/nope")
        #expect(Completer.complete(editor, roster: roster) == nil)
    }
}
