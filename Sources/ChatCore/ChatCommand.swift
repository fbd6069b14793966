/// What a logged-in user asked for with one line of input.
public enum ChatCommand: Equatable, Sendable {
    case say(String)
    case help
    case users
    case rooms
    case join(String)
    case leave
    case privateMessage(to: String, text: String)
    case quit

    /// A command word with its usage and a one-line description, for `/help`.
    public struct Description: Sendable {
        public let usage: String
        public let summary: String
    }

    /// Every command, in the order `/help` lists them.
    public static let catalogue: [Description] = [
        Description(usage: "/help", summary: "Show available commands"),
        Description(usage: "/users", summary: "List all online users"),
        Description(usage: "/rooms", summary: "List all available rooms"),
        Description(usage: "/join <room>", summary: "Join or create a room (e.g. /join #gaming)"),
        Description(usage: "/leave", summary: "Leave the current room and return to #general"),
        Description(usage: "/msg <user> <message>", summary: "Send a private message to a user"),
        Description(usage: "/quit", summary: "Disconnect from the server"),
    ]

    /// Parses one trimmed, non-empty line.
    ///
    /// Command words are case-insensitive; arguments keep their case.
    /// - Returns: the command, or the error the user should see.
    public static func parse(_ line: Substring) -> Result<ChatCommand, UserError> {
        guard line.first == "/" else { return .success(.say(String(line))) }
        let (word, rest) = line.splitFirstWord()
        switch word.lowercased() {
        case "/help":
            return .success(.help)
        case "/users":
            return .success(.users)
        case "/rooms":
            return .success(.rooms)
        case "/join":
            let (room, extra) = rest.splitFirstWord()
            guard !room.isEmpty, extra.isEmpty else { return .failure(.usage("/join <room>")) }
            return .success(.join(String(room)))
        case "/leave":
            return .success(.leave)
        case "/msg":
            let (target, text) = rest.splitFirstWord()
            guard !target.isEmpty, !text.isEmpty else { return .failure(.usage("/msg <username> <message>")) }
            return .success(.privateMessage(to: String(target), text: String(text)))
        case "/quit":
            return .success(.quit)
        default:
            return .failure(.unknownCommand(String(word)))
        }
    }
}

extension Substring {
    /// Splits off the first space-separated word; the rest has its leading spaces removed.
    func splitFirstWord() -> (word: Substring, rest: Substring) {
        let trimmed = self.drop(while: { $0 == " " || $0 == "\t" })
        guard let space = trimmed.firstIndex(where: { $0 == " " || $0 == "\t" }) else {
            return (trimmed, trimmed[trimmed.endIndex...])
        }
        let rest = trimmed[space...].drop(while: { $0 == " " || $0 == "\t" })
        return (trimmed[..<space], rest)
    }
}
