/// A key press, decoded from what a terminal in raw mode sends.
public enum Key: Equatable, Sendable {
    /// Printable text (one or more characters typed or pasted).
    case text(String)
    case enter
    case backspace
    /// Delete the character under the cursor (the Delete key, or Ctrl-D on a non-empty line).
    case delete
    case left, right, up, down
    case home, end
    /// Ctrl-Left / Alt-B and Ctrl-Right / Alt-F: a word at a time.
    case wordLeft, wordRight
    case tab
    /// Ctrl-C: clear the line.
    case interrupt
    /// Ctrl-D.
    case endOfInput
    /// Ctrl-U: delete from the start of the line to the cursor.
    case deleteToStart
    /// Ctrl-K: delete from the cursor to the end of the line.
    case deleteToEnd
    /// Ctrl-W (and Alt-Backspace): delete the word before the cursor.
    case deleteWord
    /// Ctrl-L: redraw the screen.
    case redraw
}
