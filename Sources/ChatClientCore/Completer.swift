import ChatCore

/// Tab completion of the word before the cursor: a command (`/jo` -> `/join `) at the start
/// of the line, otherwise the name of a user online. One candidate is completed with a
/// space after it; several complete to their common prefix and are listed.
public enum Completer {
    public struct Result: Equatable, Sendable {
        /// The line after completion, and where the cursor goes.
        public var line: String
        public var cursor: Int
        /// The candidates, when there was more than one.
        public var candidates: [String]
    }

    /// Every command the server knows, for completion.
    public static let commands = ChatCommand.catalogue.map(\.name)

    /// - Returns: `nil` when nothing matches.
    public static func complete(_ editor: LineEditor, roster: Roster) -> Result? {
        let characters = editor.characters
        let cursor = editor.cursor
        var start = cursor
        while start > 0, characters[start - 1] != " " { start -= 1 }
        let word = String(characters[start..<cursor])
        let isCommand = start == 0 && word.hasPrefix("/")
        let pool = isCommand ? commands : roster.all
        guard isCommand || !word.isEmpty else { return nil }
        let matches = pool.filter { $0.lowercased().hasPrefix(word.lowercased()) }
        guard let first = matches.first else { return nil }
        var completion: String
        if matches.count == 1 {
            // A name alone at the start of a line is addressed: "alice: ".
            completion = first + (start == 0 && !isCommand ? ": " : " ")
        } else {
            completion = matches.dropFirst().reduce(first) { commonPrefix($0, $1) }
            if completion.count < word.count { completion = word }
        }
        let before = String(characters[..<start])
        let after = String(characters[cursor...])
        return Result(
            line: before + completion + after, cursor: before.count + completion.count,
            candidates: matches.count > 1 ? matches : [])
    }

    private static func commonPrefix(_ a: String, _ b: String) -> String {
        var prefix = ""
        for (x, y) in zip(a, b) {
            guard x.lowercased() == y.lowercased() else { break }
            prefix.append(x)
        }
        return prefix
    }
}
