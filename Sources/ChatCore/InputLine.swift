/// Helpers for what a client typed.
public enum InputLine {
    /// Trims surrounding white space; `nil` for a line that is empty after trimming,
    /// which the protocol ignores.
    public static func trimmed(_ line: String) -> Substring? {
        let isSpace: (Character) -> Bool = { $0.isWhitespace }
        guard let first = line.firstIndex(where: { !isSpace($0) }) else { return nil }
        let last = line.lastIndex(where: { !isSpace($0) })!
        return line[first...last]
    }
}
