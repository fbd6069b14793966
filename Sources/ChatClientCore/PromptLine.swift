/// The bottom line of the screen: a prompt, then the part of what is being typed that fits
/// the terminal's width, scrolled so the cursor stays visible; a secret (an OTP code) shows
/// as `*`s. One column per character (wide characters are not measured).
public struct PromptLine: Equatable, Sendable {
    /// What to print after clearing the line.
    public var text: String
    /// The column (from 0) to put the cursor at.
    public var cursorColumn: Int

    public init(editor: LineEditor, prompt: String, width: Int, secret: Bool) {
        let characters = secret ? Array(repeating: "*", count: editor.characters.count) : editor.characters
        let room = max(1, width - prompt.count - 1)
        // The window starts where the cursor is still inside it.
        var start = 0
        if editor.cursor >= room { start = editor.cursor - room + 1 }
        let end = min(characters.count, start + room)
        text = prompt + String(characters[start..<end])
        cursorColumn = prompt.count + editor.cursor - start
    }
}
