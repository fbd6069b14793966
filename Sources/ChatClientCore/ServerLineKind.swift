import ChatCore

/// What a line from the server is, read from its form (docs/PROTOCOL.md, "Line kinds").
public enum ServerLineKind: Equatable, Sendable {
    /// `*** TEXT ***`
    case system
    /// `ERROR: TEXT`
    case error
    /// `[NAME]: TEXT`
    case chat(from: String, text: String)
    /// `[NAME]: [PM] TEXT`: a private message to you.
    case privateMessage(from: String, text: String)
    /// `[PM to NAME]: TEXT`: the echo of one you sent.
    case privateEcho(to: String, text: String)
    /// `* NAME TEXT`
    case action(by: String, text: String)
    /// Anything else: command output such as `/users` and `/rooms` lists.
    case plain

    public init(_ line: String) {
        if line.hasPrefix("*** "), line.hasSuffix(" ***"), line.count >= 8 {
            self = .system
        } else if line.hasPrefix("ERROR: ") {
            self = .error
        } else if line.hasPrefix("[PM to "), let close = line.firstRange(of: "]: ") {
            let name = line[line.index(line.startIndex, offsetBy: 7)..<close.lowerBound]
            self = .privateEcho(to: String(name), text: String(line[close.upperBound...]))
        } else if line.hasPrefix("["), let close = line.firstRange(of: "]: "),
            Self.isName(line.dropFirst().prefix { $0 != "]" })
        {
            let name = String(line[line.index(after: line.startIndex)..<close.lowerBound])
            let text = line[close.upperBound...]
            if text.hasPrefix("[PM] ") {
                self = .privateMessage(from: name, text: String(text.dropFirst(5)))
            } else {
                self = .chat(from: name, text: String(text))
            }
        } else if line.hasPrefix("* "), let space = line.dropFirst(2).firstIndex(of: " "),
            Self.isName(line[line.index(line.startIndex, offsetBy: 2)..<space])
        {
            self = .action(
                by: String(line[line.index(line.startIndex, offsetBy: 2)..<space]),
                text: String(line[line.index(after: space)...]))
        } else {
            self = .plain
        }
    }

    /// Usernames are letters, digits and `_` (UsernameRules): anything else is not a name.
    static func isName(_ text: Substring) -> Bool {
        !text.isEmpty && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }
}
