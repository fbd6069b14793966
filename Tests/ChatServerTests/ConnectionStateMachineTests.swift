import ChatCore
import ChatTestSupport
import Testing

@testable import ChatServer

@Suite struct ConnectionStateMachineTests {
    let email = EmailAddress("alice@example.com")!
    let usernamePrompt = "*** Enter username (3-16 characters, alphanumeric + underscore): ***"

    @Test func theHappyPath() {
        var machine = ConnectionStateMachine(usernameRules: UsernameRules())
        #expect(
            machine.lineReceived("alice@example.com")
                == .sendCode(email, reply: ["*** Please wait while we verify your email address... ***"]))
        #expect(machine.isWaiting)
        #expect(
            machine.codeMailed(success: true)
                == .reply(["*** OTP sent to your email. Please check your inbox. ***", "*** Enter OTP code: ***"]))
        #expect(machine.lineReceived("123456") == .verifyCode("123456", email))
        #expect(machine.codeChecked(.verified) == .reply(["*** OTP verified successfully! ***", usernamePrompt]))
        #expect(machine.lineReceived("alice") == .claimUsername("alice", email))
        #expect(machine.usernameClaimed(.success("alice")) == .reply([]))
        #expect(machine.state == .chatting(username: "alice"))
        #expect(machine.lineReceived("/users") == .command(.users))
        #expect(machine.lineReceived("hi") == .command(.say("hi")))
        #expect(machine.lineReceived("/quit") == .close(["*** Goodbye! ***"]))
        #expect(machine.state == .closed)
    }

    @Test func failuresGoBackToTheRightPrompt() {
        var machine = ConnectionStateMachine(usernameRules: UsernameRules())
        _ = machine.lineReceived("alice@example.com")
        #expect(
            machine.codeMailed(success: false)
                == .reply([
                    "ERROR: Failed to send OTP. Please try again later.", "*** Enter your email address below ***",
                ]))
        #expect(machine.state == .awaitingEmail)
        _ = machine.lineReceived("alice@example.com")
        _ = machine.codeMailed(success: true)
        #expect(
            machine.codeChecked(.invalid(attemptsLeft: 1))
                == .reply(["ERROR: Invalid OTP code (1 attempts left).", "*** Enter OTP code: ***"]))
        #expect(
            machine.codeChecked(.expired)
                == .reply(["ERROR: OTP has expired.", "*** Enter your email address below ***"]))
        _ = machine.lineReceived("alice@example.com")
        _ = machine.codeMailed(success: true)
        #expect(machine.codeChecked(.attemptsExhausted) == .close(["ERROR: Maximum verification attempts exceeded."]))
    }

    @Test func usernamesAreCheckedBeforeTheHubIsAsked() {
        var machine = ConnectionStateMachine(usernameRules: UsernameRules())
        _ = machine.lineReceived("alice@example.com")
        _ = machine.codeMailed(success: true)
        _ = machine.codeChecked(.verified)
        #expect(
            machine.lineReceived("a b")
                == .reply(["ERROR: Username may only contain letters, digits and underscores.", usernamePrompt]))
        #expect(
            machine.usernameClaimed(.failure(.usernameTaken("alice")))
                == .reply(["ERROR: Username 'alice' is already taken.", usernamePrompt]))
    }

    @Test func quitAtAnyLoginStep() {
        var machine = ConnectionStateMachine(usernameRules: UsernameRules())
        #expect(machine.lineReceived("/Quit") == .close(["*** Goodbye! ***"]))
    }
}
