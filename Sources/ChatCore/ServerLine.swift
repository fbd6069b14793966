/// Every text the server sends, in one place.
///
/// Texts marked **exact** in the product specification are kept byte for byte: existing
/// clients and users' scripts parse them. Values here carry no trailing newline; the
/// transport appends `\n` when it encodes a line.
public enum ServerLine {
    /// A system line: `*** TEXT ***`.
    public static func system(_ text: String) -> String { "*** \(text) ***" }

    /// An error line: `ERROR: TEXT`.
    public static func error(_ text: String) -> String { "ERROR: \(text)" }

    /// A chat line: `[USERNAME]: TEXT`.
    public static func chat(from username: String, _ text: String) -> String { "[\(username)]: \(text)" }

    // MARK: Connecting and logging in

    public static let welcome = [
        system("Welcome to TCP Chat Server!"),
        system("Please authenticate to continue."),
        emailPrompt,
    ]
    public static let emailPrompt = system("Enter your email address below")
    public static let verifyingEmail = system("Please wait while we verify your email address...")
    public static let otpSent = system("OTP sent to your email. Please check your inbox.")
    public static let otpPrompt = system("Enter OTP code:")
    public static let otpVerified = system("OTP verified successfully!")

    public static func usernamePrompt(minLength: Int, maxLength: Int) -> String {
        system("Enter username (\(minLength)-\(maxLength) characters, alphanumeric + underscore):")
    }

    public static func loggedIn(username: String, room: String) -> [String] {
        [
            system("Welcome, \(username)!"),
            youJoined(room),
            system("Type /help for available commands."),
        ]
    }

    /// A resume (SPEC §13): the welcome line is this one (**exact**), then the room's lines.
    public static func welcomedBack(username: String, room: String) -> [String] {
        [
            system("Welcome back, \(username)!"),
            youJoined(room),
            system("Type /help for available commands."),
        ]
    }

    /// `/token`'s answer (**exact**): only to whoever asked, never logged.
    public static func resumeToken(_ token: String) -> String { system("Resume token: \(token)") }
    /// To a session its account's resume replaced (**exact**), before it is closed.
    public static let signedInElsewhere = system("You signed in from another connection.")

    public static let goodbye = system("Goodbye!")
    public static let shuttingDown = system("Server is shutting down")
    /// A cluster whose Redis lost its data rebuilt its state from what the nodes announced,
    /// and another node announced this user's name first.
    public static let usernameInUseElsewhere = system(
        "You were disconnected: your username is in use on another server.")

    // MARK: Rooms

    public static func youJoined(_ room: String) -> String { system("You joined \(room)") }
    public static func joinedRoom(_ username: String) -> String { system("\(username) joined the room") }
    public static func leftRoom(_ username: String) -> String { system("\(username) left the room") }
    public static func returnedToDefault(from room: String, defaultRoom: String) -> String {
        system("You left \(room) and returned to \(defaultRoom)")
    }
    public static let historyHeader = system("--- History (last 5 min) ---")
    public static let historyFooter = system("----------------------------")

    // MARK: Private messages

    public static func privateMessage(from sender: String, _ text: String) -> String {
        chat(from: sender, "[PM] \(text)")
    }
    public static func privateMessageEcho(to recipient: String, _ text: String) -> String {
        "[PM to \(recipient)]: \(text)"
    }

    // MARK: Command output

    public static func userList(
        _ users: [(name: String, isOperator: Bool, away: String?)], caller: String
    ) -> [String] {
        var lines = ["Online Users (\(users.count)):"]
        lines.reserveCapacity(users.count + 1)
        for user in users {
            let you = user.name == caller ? " (you)" : ""
            let role = user.isOperator ? " (operator)" : ""
            lines.append("  - \(user.name)\(you)\(role)\(awayMark(user.away))")
        }
        return lines
    }

    /// How `/users` and `/who` show an away user: ` (away: lunch)`.
    static func awayMark(_ message: String?) -> String { message.map { " (away: \($0))" } ?? "" }

    /// To the sender of a private message to an away user (once per sender until they are back).
    public static func away(_ user: String, _ message: String) -> String { system("\(user) is away: \(message)") }
    /// To the user who set `/away <message>`.
    public static func nowAway(_ message: String) -> String { system("You are away: \(message)") }
    /// To the user who is back (`/away`, or sending anything).
    public static let back = system("You are back")
    /// To the room of a user who took a new name with `/nick` (SPEC.md §12), the user included.
    public static func renamed(from old: String, to new: String) -> String { system("\(old) is now known as \(new)") }

    /// One row of `/rooms`.
    public struct RoomListing: Sendable, Equatable {
        public var name: String
        public var isPrivate: Bool
        public var memberCount: Int
        public var isCurrent: Bool

        public init(name: String, isPrivate: Bool, memberCount: Int, isCurrent: Bool) {
            self.name = name
            self.isPrivate = isPrivate
            self.memberCount = memberCount
            self.isCurrent = isCurrent
        }
    }

    public static func roomList(_ rooms: [RoomListing]) -> [String] {
        var lines = ["Available Rooms (\(rooms.count)):"]
        for room in rooms {
            let kind = room.isPrivate ? "private" : "public"
            let current = room.isCurrent ? " (current)" : ""
            // A room kept while nobody is in it (`ROOM_KEEP_EMPTY_DAYS`).
            let members = room.memberCount == 0 ? "empty" : "\(room.memberCount) members"
            lines.append("  - \(room.name) [\(kind)] (\(members))\(current)")
        }
        return lines
    }

    public static let help: [String] = {
        var lines = ["Available Commands:"]
        for command in ChatCommand.catalogue {
            lines.append("  \(command.usage.padding(toLength: 32)) \(command.summary)")
        }
        lines.append("Type /help <command> for details.")
        return lines
    }()

    public static func help(for command: ChatCommand.Description) -> [String] {
        ["Usage: \(command.usage)", "  \(command.details)"]
    }

    // MARK: Room management

    public static func roomCreated(_ room: String, isPrivate: Bool) -> String {
        system("You created \(room) (\(isPrivate ? "private" : "public")); you are its owner")
    }
    public static func invitation(from inviter: String, to room: String) -> String {
        system("\(inviter) invited you to \(room). Type /join \(room) to enter.")
    }
    public static func youInvited(_ user: String, to room: String) -> String {
        system("You invited \(user) to \(room)")
    }
    public static func youWereKicked(from room: String, by kicker: String) -> String {
        system("You were kicked from \(room) by \(kicker)")
    }
    public static func wasKicked(_ user: String, by kicker: String) -> String {
        system("\(user) was kicked from the room by \(kicker)")
    }
    /// To the owner or operator who dropped an empty room.
    public static func roomDropped(_ room: String) -> String { system("\(room) was dropped") }
    public static func topic(_ topic: String, of room: String) -> String { system("Topic for \(room): \(topic)") }
    public static func noTopic(_ room: String) -> String { system("No topic is set for \(room)") }
    public static func topicSet(by user: String, to topic: String) -> String {
        system("\(user) set the topic: \(topic)")
    }

    public static func memberList(
        room: String, members: [(name: String, isOwner: Bool, away: String?)], caller: String
    ) -> [String] {
        var lines = ["Members of \(room) (\(members.count)):"]
        for member in members {
            let owner = member.isOwner ? " (owner)" : ""
            let you = member.name == caller ? " (you)" : ""
            lines.append("  - \(member.name)\(owner)\(you)\(awayMark(member.away))")
        }
        return lines
    }

    // MARK: People

    public static func action(by user: String, _ text: String) -> String { "* \(user) \(text)" }
    public static func nowIgnoring(_ user: String) -> String { system("You are now ignoring \(user)") }
    public static func noLongerIgnoring(_ user: String) -> String { system("You are no longer ignoring \(user)") }
    public static func ignoreList(_ names: [String]) -> [String] {
        guard !names.isEmpty else { return [system("You are not ignoring anyone")] }
        return ["Ignored Users (\(names.count)):"] + names.map { "  - \($0)" }
    }

    // MARK: Operators

    public static func youWereBanned(by operatorName: String, minutes: Int) -> String {
        system("You have been banned from this server by \(operatorName) for \(minutes) minutes")
    }
    public static func banned(_ user: String, minutes: Int) -> String {
        system("\(user) is banned for \(minutes) minutes (e-mail address and IP address)")
    }
    public static func banLifted(_ target: String) -> String { system("Ban lifted: \(target)") }
    public static func banList(_ bans: [(target: String, minutesLeft: Int)]) -> [String] {
        guard !bans.isEmpty else { return [system("No active bans")] }
        return ["Active Bans (\(bans.count)):"] + bans.map { "  - \($0.target) (\($0.minutesLeft) minutes left)" }
    }
    public static func announcement(from operatorName: String, _ text: String) -> String {
        system("Announcement from \(operatorName): \(text)")
    }
}

extension String {
    fileprivate func padding(toLength length: Int) -> String {
        count >= length ? self : self + String(repeating: " ", count: length - count)
    }
}
