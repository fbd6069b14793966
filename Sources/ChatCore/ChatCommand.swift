/// What a logged-in user asked for with one line of input.
public enum ChatCommand: Equatable, Sendable {
    case say(String)
    case help(String?)
    case users
    case rooms
    case join(String)
    case create(String, isPrivate: Bool)
    case leave
    case who
    case invite(String)
    case kick(String)
    case topic(String?)
    case privateMessage(to: String, text: String)
    case reply(String)
    case me(String)
    case ignore(String?)
    case unignore(String)
    case ban(String, minutes: Int?)
    case unban(String)
    case bans
    case wall(String)
    /// Away with this message; `nil`: back.
    case away(String?)
    /// Change one's username in place.
    case nick(String)
    /// Delete an empty room (its owner, or an operator).
    case drop(String)
    /// A resume token for this account (SPEC §13).
    case token
    /// Revoke this connection's token (`all`: every token of the account), then quit.
    case logout(all: Bool)
    case quit

    /// Parses one trimmed, non-empty line.
    ///
    /// Command words are case-insensitive; arguments keep their case.
    /// - Returns: the command, or the error the user should see.
    public static func parse(_ line: Substring) -> Result<ChatCommand, UserError> {
        guard line.first == "/" else { return .success(.say(String(line))) }
        let (word, rest) = line.splitFirstWord()
        let name = word.lowercased()
        guard let description = catalogue.first(where: { $0.name == name }) else {
            return .failure(.unknownCommand(String(word)))
        }
        guard let command = parseArguments(of: name, rest) else {
            return .failure(.usage(description.usage))
        }
        return .success(command)
    }

    private static func parseArguments(of name: String, _ rest: Substring) -> ChatCommand? {
        let (first, remainder) = rest.splitFirstWord()
        let single = first.isEmpty || !remainder.isEmpty ? nil : String(first)
        switch name {
        case "/help":
            guard rest.isEmpty || single != nil else { return nil }
            return .help(single.map { $0.hasPrefix("/") ? $0.lowercased() : "/" + $0.lowercased() })
        case "/users": return rest.isEmpty ? .users : nil
        case "/rooms": return rest.isEmpty ? .rooms : nil
        case "/leave": return rest.isEmpty ? .leave : nil
        case "/who": return rest.isEmpty ? .who : nil
        case "/bans": return rest.isEmpty ? .bans : nil
        case "/quit": return .quit
        case "/token": return rest.isEmpty ? .token : nil
        case "/logout":
            if rest.isEmpty { return .logout(all: false) }
            return rest.lowercased() == "all" ? .logout(all: true) : nil
        case "/join": return single.map { .join($0) }
        case "/invite": return single.map { .invite($0) }
        case "/kick": return single.map { .kick($0) }
        case "/unignore": return single.map { .unignore($0) }
        case "/unban": return single.map { .unban($0) }
        case "/nick": return single.map { .nick($0) }
        case "/drop": return single.map { .drop($0) }
        case "/ignore":
            guard rest.isEmpty || single != nil else { return nil }
            return .ignore(single)
        case "/create":
            guard !first.isEmpty else { return nil }
            let (kind, extra) = remainder.splitFirstWord()
            guard extra.isEmpty else { return nil }
            switch kind.lowercased() {
            case "", "public": return .create(String(first), isPrivate: false)
            case "private": return .create(String(first), isPrivate: true)
            default: return nil
            }
        case "/topic":
            return .topic(rest.isEmpty ? nil : String(rest))
        case "/msg":
            guard !first.isEmpty, !remainder.isEmpty else { return nil }
            return .privateMessage(to: String(first), text: String(remainder))
        case "/reply":
            return rest.isEmpty ? nil : .reply(String(rest))
        case "/me":
            return rest.isEmpty ? nil : .me(String(rest))
        case "/wall":
            return rest.isEmpty ? nil : .wall(String(rest))
        case "/away":
            return .away(rest.isEmpty ? nil : String(rest))
        case "/ban":
            guard !first.isEmpty else { return nil }
            let (minutes, extra) = remainder.splitFirstWord()
            guard extra.isEmpty else { return nil }
            if minutes.isEmpty { return .ban(String(first), minutes: nil) }
            guard let value = Int(minutes), value > 0, value <= 525_600 else { return nil }
            return .ban(String(first), minutes: value)
        default:
            return nil
        }
    }
}

extension ChatCommand {
    /// A command word with its usage, a one-line summary and a longer explanation.
    public struct Description: Sendable {
        public let name: String
        public let usage: String
        public let summary: String
        public let details: String
        /// Only server operators may use it.
        public let operatorOnly: Bool

        init(_ usage: String, _ summary: String, _ details: String, operatorOnly: Bool = false) {
            self.name = String(usage.prefix { $0 != " " })
            self.usage = usage
            self.summary = summary
            self.details = details
            self.operatorOnly = operatorOnly
        }
    }

    /// Every command, in the order `/help` lists them.
    public static let catalogue: [Description] = [
        Description("/help [command]", "Show available commands", "Lists every command; /help <command> explains one."),
        Description("/users", "List all online users", "Lists everyone online, sorted; operators are marked."),
        Description(
            "/rooms", "List all available rooms",
            "Lists the rooms you can see with their member counts. Private rooms are listed only to their members and invitees."
        ),
        Description(
            "/join <room>", "Join or create a room (e.g. /join #gaming)",
            "Moves you to the room, creating it as a public room (with you as owner) if it does not exist. Private rooms need an invite."
        ),
        Description(
            "/create <room> [public|private]", "Create a room and become its owner",
            "Creates the room and moves you into it as its owner. A private room is invite-only and hidden from everyone else."
        ),
        Description("/leave", "Leave the current room and return to #general", "Takes you back to #general."),
        Description(
            "/who", "List the members of your room",
            "Lists the members of your current room, marking the owner and you."),
        Description(
            "/invite <user>", "Invite a user to your private room",
            "Any member of a private room may invite an online user; the invitation lasts until the room disappears or the user is kicked."
        ),
        Description(
            "/kick <user>", "Send a user from your room back to #general",
            "Room owners (and operators, in any room) can move a member back to #general; a private room's invitation is revoked."
        ),
        Description(
            "/topic [text]", "Show or set the room topic",
            "Without text, shows the topic of your room. With text, sets it (room owners and operators only)."
        ),
        Description(
            "/drop <room>", "Delete an empty room you own",
            "A room is kept while nobody is in it (its owner, invitations, topic and history), for some days; its owner, under any name, or an operator can delete it once it is empty."
        ),
        Description(
            "/msg <username> <message>", "Send a private message to a user",
            "Sends a private message to an online user."),
        Description(
            "/reply <message>", "Answer the last private message",
            "Sends a private message to the last user who sent you one."),
        Description("/me <action>", "Send an action to the room", "Sends '* yourname action' to your room."),
        Description(
            "/ignore [user]", "Ignore a user, or list ignored users",
            "You stop receiving the user's room messages and private messages for the rest of your session; they are not told. Without a name, lists whom you ignore."
        ),
        Description("/unignore <user>", "Stop ignoring a user", "Shows the user's messages to you again."),
        Description(
            "/ban <user> [minutes]", "Ban a user (operators)",
            "Disconnects the user and refuses their e-mail address and IP address until the ban expires (default 60 minutes).",
            operatorOnly: true),
        Description(
            "/unban <email-or-ip>", "Lift a ban (operators)", "Removes the ban on an e-mail address or IP address.",
            operatorOnly: true),
        Description(
            "/bans", "List active bans (operators)", "Lists the banned addresses and when each ban ends.",
            operatorOnly: true),
        Description(
            "/wall <text>", "Announce to everyone (operators)", "Sends a system line to everyone online.",
            operatorOnly: true),
        Description(
            "/away [message]", "Mark yourself away, or back",
            "With a message, marks you away: /users and /who show it, and whoever sends you a private message is told, once, until you are back. Without one, or when you next send anything, you are back."
        ),
        Description(
            "/nick <name>", "Change your username",
            "Takes a new name under the same rules as at login; your room sees the change, and ignore lists, /reply, room ownership and invitations follow you. A few changes a minute at most."
        ),
        Description(
            "/token", "Get a token to stay signed in",
            "Answers with a resume token: at the e-mail prompt, /resume <token> logs you back in without a code, under your name and in your room, for some days. Keep it secret; /logout revokes it."
        ),
        Description(
            "/logout [all]", "Revoke your resume token and quit",
            "Revokes the token this connection used or was given (with all: every token of your account), then disconnects."
        ),
        Description("/quit", "Disconnect from the server", "Says goodbye and closes the connection."),
    ]

    public static func description(of name: String) -> Description? {
        catalogue.first { $0.name == name }
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
