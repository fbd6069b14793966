/// The line being typed: its text, the cursor, and the history of sent lines, edited the
/// way readline and IRC clients do (arrows, Home/End, Ctrl-U/K/W, up/down through history).
public struct LineEditor: Sendable, Equatable {
    /// The line as characters (grapheme clusters), so the cursor moves by what a person sees.
    public private(set) var characters: [Character] = []
    /// Where the next character goes: 0 ... characters.count.
    public private(set) var cursor = 0
    /// Sent lines, oldest first.
    public private(set) var history: [String] = []
    /// The position while browsing history (`history.count`: the line being typed).
    private var historyIndex = 0
    /// The line that was being typed when browsing began.
    private var draft: [Character] = []
    /// The most lines kept.
    public let historyLimit: Int

    public init(historyLimit: Int = 500) {
        self.historyLimit = historyLimit
    }

    public var text: String { String(characters) }

    /// What a key does to the line. `enter` is ``submit(remember:)``'s; `tab` the completer's.
    /// - Returns: whether the line or the cursor changed.
    @discardableResult
    public mutating func apply(_ key: Key) -> Bool {
        let before = (characters, cursor)
        switch key {
        case .text(let string):
            // Pasted line breaks are not ours to interpret; tabs become spaces.
            let clean = string.filter { !$0.isNewline }.map { $0 == "\t" ? " " : $0 }
            characters.insert(contentsOf: clean, at: cursor)
            cursor += clean.count
        case .backspace:
            if cursor > 0 {
                characters.remove(at: cursor - 1)
                cursor -= 1
            }
        case .delete:
            if cursor < characters.count { characters.remove(at: cursor) }
        case .left: cursor = max(0, cursor - 1)
        case .right: cursor = min(characters.count, cursor + 1)
        case .home: cursor = 0
        case .end: cursor = characters.count
        case .wordLeft: cursor = wordStart(before: cursor)
        case .wordRight: cursor = wordEnd(after: cursor)
        case .deleteToStart:
            characters.removeSubrange(0..<cursor)
            cursor = 0
        case .deleteToEnd:
            characters.removeSubrange(cursor...)
        case .deleteWord:
            let start = wordStart(before: cursor)
            characters.removeSubrange(start..<cursor)
            cursor = start
        case .interrupt:
            clear()
        case .up: browseHistory(by: -1)
        case .down: browseHistory(by: 1)
        case .enter, .tab, .endOfInput, .redraw: break
        }
        return before != (characters, cursor)
    }

    /// Replaces the whole line, the cursor at its end (completion, tests).
    public mutating func replace(with text: String, cursor newCursor: Int? = nil) {
        characters = Array(text)
        cursor = min(newCursor ?? characters.count, characters.count)
    }

    /// Takes the line to send and starts a new one.
    /// - Parameter remember: `false` keeps the line out of the history (an OTP code).
    public mutating func submit(remember: Bool = true) -> String {
        let line = text
        if remember, !line.trimmingSpaces.isEmpty, history.last != line {
            history.append(line)
            if history.count > historyLimit { history.removeFirst(history.count - historyLimit) }
        }
        clear()
        return line
    }

    public mutating func clear() {
        characters.removeAll()
        cursor = 0
        historyIndex = history.count
        draft.removeAll()
    }

    private mutating func browseHistory(by step: Int) {
        if historyIndex > history.count { historyIndex = history.count }
        let target = historyIndex + step
        guard target >= 0, target <= history.count else { return }
        if historyIndex == history.count { draft = characters }
        historyIndex = target
        characters = target == history.count ? draft : Array(history[target])
        cursor = characters.count
    }

    private func wordStart(before position: Int) -> Int {
        var index = position
        while index > 0, characters[index - 1] == " " { index -= 1 }
        while index > 0, characters[index - 1] != " " { index -= 1 }
        return index
    }

    private func wordEnd(after position: Int) -> Int {
        var index = position
        while index < characters.count, characters[index] == " " { index += 1 }
        while index < characters.count, characters[index] != " " { index += 1 }
        return index
    }
}

extension String {
    var trimmingSpaces: Substring {
        let start = firstIndex { !$0.isWhitespace } ?? endIndex
        let end = lastIndex { !$0.isWhitespace }.map { index(after: $0) } ?? start
        return self[start..<end]
    }
}
