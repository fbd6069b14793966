import Testing

@testable import ChatCore

/// The texts SPEC.md marks **exact**, byte for byte.
@Suite struct ServerLineTests {
    @Test func greetingAndLogin() {
        #expect(
            ServerLine.welcome == [
                "*** Welcome to TCP Chat Server! ***",
                "*** Please authenticate to continue. ***",
                "*** Enter your email address below ***",
            ])
        #expect(ServerLine.verifyingEmail == "*** Please wait while we verify your email address... ***")
        #expect(ServerLine.otpSent == "*** OTP sent to your email. Please check your inbox. ***")
        #expect(ServerLine.otpPrompt == "*** Enter OTP code: ***")
        #expect(ServerLine.otpVerified == "*** OTP verified successfully! ***")
        #expect(
            ServerLine.usernamePrompt(minLength: 3, maxLength: 16)
                == "*** Enter username (3-16 characters, alphanumeric + underscore): ***")
        #expect(
            ServerLine.loggedIn(username: "alice", room: "#general") == [
                "*** Welcome, alice! ***",
                "*** You joined #general ***",
                "*** Type /help for available commands. ***",
            ])
    }

    @Test func loginErrors() {
        #expect(UserError.invalidEmail.line == "ERROR: Invalid email address.")
        #expect(UserError.mailFailed.line == "ERROR: Failed to send OTP. Please try again later.")
        #expect(UserError.invalidCode(attemptsLeft: 2).line == "ERROR: Invalid OTP code (2 attempts left).")
        #expect(UserError.tooManyAttempts.line == "ERROR: Maximum verification attempts exceeded.")
        #expect(UserError.codeExpired.line == "ERROR: OTP has expired.")
        #expect(UserError.usernameTaken("alice").line == "ERROR: Username 'alice' is already taken.")
        #expect(
            UserError.ipLimitReached("1.2.3.4").line == "ERROR: IP address 1.2.3.4 already has an active connection")
    }

    @Test func chatAndRooms() {
        #expect(ServerLine.chat(from: "alice", "hi") == "[alice]: hi")
        #expect(ServerLine.joinedRoom("alice") == "*** alice joined the room ***")
        #expect(ServerLine.leftRoom("alice") == "*** alice left the room ***")
        #expect(ServerLine.youJoined("#gaming") == "*** You joined #gaming ***")
        #expect(
            ServerLine.returnedToDefault(from: "#gaming", defaultRoom: "#general")
                == "*** You left #gaming and returned to #general ***")
        #expect(ServerLine.historyHeader == "*** --- History (last 5 min) --- ***")
        #expect(ServerLine.historyFooter == "*** ---------------------------- ***")
        #expect(ServerLine.privateMessage(from: "alice", "hey") == "[alice]: [PM] hey")
        #expect(ServerLine.privateMessageEcho(to: "bob", "hey") == "[PM to bob]: hey")
        #expect(ServerLine.goodbye == "*** Goodbye! ***")
        #expect(UserError.alreadyInDefaultRoom.line == "ERROR: You are already in the default room.")
        #expect(UserError.alreadyInRoom("#gaming").line == "ERROR: You are already in #gaming.")
        #expect(UserError.userNotOnline("bob").line == "ERROR: User 'bob' is not online.")
        #expect(
            UserError.messageTooLong(maximum: 1024).line
                == "ERROR: Message too long. Maximum length is 1024 characters.")
    }

    @Test func roomManagementTexts() {
        #expect(
            ServerLine.invitation(from: "alice", to: "#secret")
                == "*** alice invited you to #secret. Type /join #secret to enter. ***")
        #expect(UserError.privateRoom("#secret").line == "ERROR: #secret is private. Ask a member for an invite.")
        #expect(ServerLine.action(by: "alice", "waves") == "* alice waves")
    }

    @Test func userListIsMarkedForTheCaller() {
        #expect(
            ServerLine.userList(
                [("alice", false, nil), ("bob", false, nil), ("charlie", false, nil)], caller: "bob") == [
                    "Online Users (3):", "  - alice", "  - bob (you)", "  - charlie",
                ])
        #expect(
            ServerLine.userList([("root", true, nil), ("zed", false, "lunch")], caller: "root") == [
                "Online Users (2):", "  - root (you) (operator)", "  - zed (away: lunch)",
            ])
        #expect(ServerLine.away("alicia", "lunch") == "*** alicia is away: lunch ***")
    }

    @Test func roomList() {
        let lines = ServerLine.roomList([
            .init(name: "#gaming", isPrivate: false, memberCount: 3, isCurrent: false),
            .init(name: "#general", isPrivate: false, memberCount: 1, isCurrent: true),
        ])
        #expect(
            lines == [
                "Available Rooms (2):",
                "  - #gaming [public] (3 members)",
                "  - #general [public] (1 members) (current)",
            ])
    }

    @Test func helpListsEveryCommand() {
        let help = ServerLine.help.joined(separator: "\n")
        for word in [
            "/help", "/users", "/rooms", "/join", "/leave", "/msg", "/quit", "/create", "/invite", "/kick",
            "/topic", "/who", "/me", "/reply", "/ignore", "/unignore", "/ban", "/unban", "/bans", "/wall",
        ] {
            #expect(help.contains(word))
        }
    }
}
