import ChatCore
import ChatTestSupport
import Logging
import NIOCore
import Testing

@testable import ChatHub
@testable import ChatServer

/// The session (login state machine and command router) without a channel.
@Suite struct SessionStateMachineTests {
    let email = EmailAddress("alice@example.com")!
    let usernamePrompt = "*** Enter username (3-16 characters, alphanumeric + underscore): ***"
    let me = SessionAddress(id: 1, shard: 0)

    private func makeMachine(adminEmails: Set<String> = []) -> SessionStateMachine {
        SessionStateMachine(
            identity: .init(address: me, ip: "10.0.0.1", displayIP: "10.0.0.1"), usernameRules: UsernameRules(),
            adminEmails: adminEmails)
    }

    /// A machine past admission, waiting for an address.
    private func admittedMachine() -> SessionStateMachine {
        var machine = makeMachine()
        _ = machine.answered(.admission(.admitted))
        return machine
    }

    /// A machine whose user, verified as alice@example.com, claimed the name alice.
    private func claimingMachine() -> SessionStateMachine {
        var machine = admittedMachine()
        _ = machine.lineReceived("alice@example.com")
        _ = machine.answered(.codeRequest(.allowed))
        _ = machine.codeMailed(success: true)
        _ = machine.codeChecked(.verified)
        _ = machine.lineReceived("alice")
        return machine
    }

    @Test func theHappyPath() {
        var machine = makeMachine(adminEmails: ["alice@example.com"])
        #expect(machine.connected() == .submit(.admit(me, ip: "10.0.0.1", display: "10.0.0.1")))
        #expect(machine.isWaiting)
        #expect(
            machine.answered(.admission(.admitted))
                == .log(.info, "Client connected") + .startLoginTimer + .send(ServerLine.welcome))
        #expect(
            machine.lineReceived("alice@example.com")
                == .submit(.requestCode(me, emailKey: "alice@example.com", ip: "10.0.0.1")))
        #expect(machine.isWaiting)
        #expect(
            machine.answered(.codeRequest(.allowed))
                == .send(["*** Please wait while we verify your email address... ***"]) + .mailCode(email))
        machine.codeIssued(ticket: 42)
        #expect(
            machine.codeMailed(success: true)
                == .send(["*** OTP sent to your email. Please check your inbox. ***", "*** Enter OTP code: ***"]))
        #expect(machine.lineReceived("123456") == .verifyCode("123456", email))
        #expect(
            machine.codeChecked(.verified)
                == .submit(.codeUsed(emailKey: "alice@example.com"))
                + .send(["*** OTP verified successfully! ***", usernamePrompt]))
        #expect(
            machine.lineReceived("alice")
                == .submit(
                    .login(me, username: "alice", emailKey: "alice@example.com", ip: "10.0.0.1", isOperator: true)))
        #expect(machine.isWaiting)
        #expect(
            machine.answered(.login(.success("alice")))
                == .log(.info, "User logged in", ["operator": "true"]) + .stopLoginTimer + .count(.loggedIn))
        #expect(machine.state == .chatting(username: "alice"))
        #expect(machine.lineReceived("/users") == .route(.users))
        #expect(machine.lineReceived("hi") == .route(.say("hi")))
        #expect(machine.lineReceived("/quit") == .close(["*** Goodbye! ***"]))
        // The code was used: nothing to revoke; the slot and name are given back.
        #expect(machine.closed() == .submit(.release(1)) + .log(.info, "Client disconnected"))
    }

    /// `/nick`: the name is checked as at login before the hub is asked, and the session
    /// goes by the new name once the hub has given it.
    @Test func aNewNameIsCheckedHereAndTakenWhenTheHubSaysSo() {
        var machine = claimingMachine()
        _ = machine.answered(.login(.success("alice")))
        #expect(
            machine.lineReceived("/nick x") == .send([UserError.invalidUsername(.length(minimum: 3, maximum: 16)).line])
        )
        #expect(machine.lineReceived("/nick system") == .send([UserError.invalidUsername(.reserved("system")).line]))
        #expect(machine.lineReceived("/nick alicia") == .submit(.rename(1, to: "alicia")))
        #expect(machine.username == "alice")
        #expect(
            machine.answered(.renamed(from: "alice", to: "alicia"))
                == .log(.info, "User changed name", ["previous_user": "alice"]))
        #expect(machine.username == "alicia")
    }

    @Test func failuresGoBackToTheRightPrompt() {
        var machine = admittedMachine()
        _ = machine.lineReceived("alice@example.com")
        _ = machine.answered(.codeRequest(.allowed))
        machine.codeIssued(ticket: 7)
        // A failed mail revokes its code.
        #expect(
            machine.codeMailed(success: false)
                == .revokeCode(email, ticket: 7)
                + .send([
                    "ERROR: Failed to send OTP. Please try again later.", "*** Enter your email address below ***",
                ]))
        #expect(machine.state == .awaitingEmail)
        _ = machine.lineReceived("alice@example.com")
        #expect(
            machine.answered(.codeRequest(.throttled(.tooManyCodes(retryAfterSeconds: 27))))
                == .log(
                    .notice, "OTP request throttled",
                    ["reason": "Too many codes requested. Try again in 27 seconds."]) + .count(.codeThrottled)
                + .send([
                    "*** Please wait while we verify your email address... ***",
                    "ERROR: Too many codes requested. Try again in 27 seconds.",
                    "*** Enter your email address below ***",
                ]))
        _ = machine.lineReceived("alice@example.com")
        _ = machine.answered(.codeRequest(.allowed))
        _ = machine.codeMailed(success: true)
        #expect(
            machine.codeChecked(.invalid(attemptsLeft: 1))
                == .count(.loginFailed(.invalidCode))
                + .send(["ERROR: Invalid OTP code (1 attempts left).", "*** Enter OTP code: ***"]))
        #expect(
            machine.codeChecked(.expired)
                == .count(.loginFailed(.codeExpired))
                + .send(["ERROR: OTP has expired.", "*** Enter your email address below ***"]))
        _ = machine.lineReceived("alice@example.com")
        _ = machine.answered(.codeRequest(.allowed))
        _ = machine.codeMailed(success: true)
        #expect(
            machine.codeChecked(.attemptsExhausted)
                == .count(.loginFailed(.tooManyAttempts)) + .close(["ERROR: Maximum verification attempts exceeded."]))
    }

    @Test func usernamesAreCheckedBeforeTheHubIsAsked() {
        var machine = admittedMachine()
        _ = machine.lineReceived("alice@example.com")
        _ = machine.answered(.codeRequest(.allowed))
        _ = machine.codeMailed(success: true)
        _ = machine.codeChecked(.verified)
        #expect(
            machine.lineReceived("a b")
                == .count(.loginFailed(.invalidUsername))
                + .send(["ERROR: Username may only contain letters, digits and underscores.", usernamePrompt]))
        _ = machine.lineReceived("alice")
        #expect(
            machine.answered(.login(.failure(.usernameTaken("alice"))))
                == .count(.loginFailed(.usernameTaken))
                + .send(["ERROR: Username 'alice' is already taken.", usernamePrompt]))
        #expect(machine.state == .awaitingUsername(email))
    }

    @Test func bansAndRefusalsCloseTheConnection() {
        var refused = makeMachine()
        #expect(
            refused.answered(
                .admission(.refused(line: "ERROR: Server is full. Please try again later.", reason: .serverFull)))
                == .log(.info, "Connection refused", ["reason": "ERROR: Server is full. Please try again later."])
                + .count(.refused(.serverFull)) + .close(["ERROR: Server is full. Please try again later."]))
        // Never admitted: the release is a no-op for the hub, and nothing is logged.
        #expect(refused.closed() == .submit(.release(1)))

        var banned = admittedMachine()
        _ = banned.lineReceived("alice@example.com")
        #expect(
            banned.answered(.codeRequest(.banned))
                == .log(.info, "Login refused: e-mail address is banned") + .count(.loginFailed(.banned))
                + .close([
                    "*** Please wait while we verify your email address... ***",
                    "ERROR: You are banned from this server.",
                ]))
        var bannedAtLogin = claimingMachine()
        #expect(
            bannedAtLogin.answered(.login(.failure(.banned)))
                == .log(.info, "Login refused: banned") + .count(.loginFailed(.banned))
                + .close(["ERROR: You are banned from this server."]))
    }

    /// A cluster node without Redis: the step is refused and asked again (at the e-mail
    /// prompt without "please wait" first: the hub's answer brings that line).
    @Test func aHubLogOutageSendsTheUserBackToThePrompt() {
        let unavailable = "ERROR: The chat is briefly unavailable. Please try again in a moment."
        var atEmail = admittedMachine()
        #expect(
            atEmail.lineReceived("alice@example.com")
                == .submit(.requestCode(me, emailKey: "alice@example.com", ip: "10.0.0.1")))
        #expect(
            atEmail.answered(.codeRequest(.unavailable))
                == .count(.loginFailed(.chatUnavailable)) + .send([unavailable, ServerLine.emailPrompt]))
        #expect(atEmail.state == .awaitingEmail)

        var atName = claimingMachine()
        let email = EmailAddress("alice@example.com")!
        #expect(
            atName.answered(.login(.failure(.chatUnavailable)))
                == .count(.loginFailed(.chatUnavailable)) + .send([unavailable, usernamePrompt]))
        #expect(atName.state == .awaitingUsername(email))
    }

    @Test func theLoginDeadlineAndTheEndOfTheConnection() {
        var machine = admittedMachine()
        _ = machine.lineReceived("alice@example.com")
        _ = machine.answered(.codeRequest(.allowed))
        machine.codeIssued(ticket: 9)
        _ = machine.codeMailed(success: true)
        #expect(
            machine.loginTimedOut()
                == .log(.info, "Login timed out") + .count(.loginFailed(.timedOut))
                + .close(["ERROR: Login timed out."]))
        // The code asked for is revoked when the connection ends.
        #expect(
            machine.closed()
                == .revokeCode(email, ticket: 9) + .submit(.release(1)) + .log(.info, "Client disconnected"))
        // An answer for a session that is gone changes nothing.
        #expect(machine.answered(.login(.success("alice"))) == .none)
        #expect(machine.loginTimedOut() == .none)
    }

    @Test func quitAtAnyLoginStep() {
        var machine = admittedMachine()
        #expect(machine.lineReceived("/Quit") == .close(["*** Goodbye! ***"]))
        var atCode = admittedMachine()
        _ = atCode.lineReceived("alice@example.com")
        _ = atCode.answered(.codeRequest(.allowed))
        _ = atCode.codeMailed(success: true)
        #expect(atCode.lineReceived("/quit") == .close(["*** Goodbye! ***"]))
    }

    // MARK: With a log that answers late

    /// Two people log in through a log that holds every command until told: each session
    /// waits for its answers, and the one whose claim is ordered second is told the name is
    /// taken, though both asked before either heard back.
    @Test func sessionsAreRightWhenEveryAnswerComesLate() throws {
        let log = DelayedLog()
        var first = Driver(address: SessionAddress(id: 1, shard: 0), ip: "10.0.0.1", log: log)
        var second = Driver(address: SessionAddress(id: 2, shard: 0), ip: "10.0.0.2", log: log)
        first.start()
        second.start()
        // Typed before the admission came back: waits, then is handled in order.
        first.type("alice@example.com")
        #expect(first.output.isEmpty && log.pendingCount == 2)
        let admissions = log.deliver()
        first.receive(admissions)
        second.receive(admissions)
        #expect(first.output.suffix(1) == ["*** Enter your email address below ***"])
        first.receive(log.deliver())  // the code request is allowed: mailed
        #expect(
            first.output.suffix(3) == [
                "*** Please wait while we verify your email address... ***",
                "*** OTP sent to your email. Please check your inbox. ***", "*** Enter OTP code: ***",
            ])

        second.type("bob@example.com")
        second.receive(log.deliver())
        for driver in [first, second] { #expect(driver.machine.state == .awaitingCode(driver.email)) }
        first.type(first.code)
        second.type(second.code)
        first.type("alice")
        second.type("Alice")
        first.type("hello from alice")  // waits for the claim's answer
        #expect(log.pendingCount == 4)  // two codeUsed, two logins
        let effects = log.deliver()
        first.receive(effects)
        second.receive(effects)
        #expect(first.machine.state == .chatting(username: "alice"))
        #expect(second.output.suffix(2) == ["ERROR: Username 'Alice' is already taken.", usernamePrompt])
        #expect(
            first.output.suffix(3) == [
                "*** Welcome, alice! ***", "*** You joined #general ***", "*** Type /help for available commands. ***",
            ])
        // The chat line waited for the login and went out after it.
        #expect(log.pendingCount == 1)
        first.receive(log.deliver())
        #expect(first.output.last == "[alice]: hello from alice")

        // The router answers reads at once and sends changes through the log.
        first.type("/users")
        #expect(first.output.suffix(2) == ["Online Users (1):", "  - alice (you)"])
        first.type("/join #den")
        first.type("/join #den")
        #expect(log.pendingCount == 2)
        first.receive(log.deliver())
        #expect(first.output.suffix(2) == ["*** You joined #den ***", "ERROR: You are already in #den."])
    }

    /// A session's side of the connection, as the handler would run it, with real OTP codes.
    private struct Driver {
        var machine: SessionStateMachine
        let log: DelayedLog
        let otp = OTPService(expiry: .seconds(300), maximumAttempts: 3)
        var ignoring = IgnoreList()
        var queue: [String] = []
        var output: [String] = []
        var code = ""
        var email: EmailAddress {
            EmailAddress(machine.identity.ip == "10.0.0.1" ? "alice@example.com" : "bob@example.com")!
        }

        init(address: SessionAddress, ip: String, log: DelayedLog) {
            self.machine = SessionStateMachine(
                identity: .init(address: address, ip: ip, displayIP: ip), usernameRules: UsernameRules())
            self.log = log
        }

        mutating func start() { perform(machine.connected()) }

        mutating func type(_ line: String) {
            queue.append(line)
            drain()
        }

        /// Hands over the effects addressed to this session, then handles waiting input.
        mutating func receive(_ effects: [HubEffect]) {
            let me = machine.identity.address
            for effect in effects {
                switch effect {
                case .answer(me, let answer): perform(machine.answered(answer))
                case .lines(me, let lines), .enterRoom(me, _, let lines, _): output += lines.map(Self.text)
                case .room(_, let line, _, _) where machine.username != nil: output.append(Self.text(line))
                default: break
                }
            }
            drain()
        }

        private mutating func drain() {
            while !machine.isWaiting, !queue.isEmpty {
                perform(machine.lineReceived(Substring(queue.removeFirst())))
            }
        }

        private mutating func perform(_ action: SessionAction) {
            output += action.lines
            if let command = action.submit { log.submit(command) }
            switch action.code {
            case .mail(let email):
                let issued = otp.issue(for: email)
                code = issued.code
                machine.codeIssued(ticket: issued.ticket)
                perform(machine.codeMailed(success: true))
            case .verify(let guess, let email): perform(machine.codeChecked(otp.verify(guess, for: email)))
            case nil: break
            }
            if let command = action.route {
                let router = CommandRouter(session: machine.identity.address.id, username: machine.username!)
                if let routed = router.route(command, hub: log, ignoring: &ignoring, lastPrivateSender: nil) {
                    perform(routed)
                }
            }
        }

        private static func text(_ buffer: ByteBuffer) -> String {
            String(String(buffer: buffer).dropLast())
        }
    }
}
