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

    public static let goodbye = system("Goodbye!")
    public static let shuttingDown = system("Server is shutting down")

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

    public static func userList(_ names: [String], caller: String) -> [String] {
        var lines = ["Online Users (\(names.count)):"]
        lines.reserveCapacity(names.count + 1)
        for name in names {
            lines.append(name == caller ? "  - \(name) (you)" : "  - \(name)")
        }
        return lines
    }

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
            lines.append("  - \(room.name) [\(kind)] (\(room.memberCount) members)\(current)")
        }
        return lines
    }

    public static let help: [String] = {
        var lines = ["Available Commands:"]
        for command in ChatCommand.catalogue {
            lines.append("  \(command.usage.padding(toLength: 24)) \(command.summary)")
        }
        return lines
    }()
}

extension String {
    fileprivate func padding(toLength length: Int) -> String {
        count >= length ? self : self + String(repeating: " ", count: length - count)
    }
}
