import ChatClientCore
import Testing

struct StayingSignedInTests {
    @Test func theKeptTokenAnswersTheEmailPromptOncePerConnection() {
        var signIn = StayingSignedIn(token: "abc", remembers: true)
        let first = signIn.follow("*** Enter your email address below ***")
        #expect(first.steps.contains(.send("/resume abc")) && first.show)
        // Refused: forgotten, and the prompt that follows is the user's.
        #expect(signIn.follow("ERROR: Invalid or expired resume token.").steps.first == .forget)
        #expect(signIn.follow("*** Enter your email address below ***").steps.isEmpty)
        #expect(signIn.token == nil)
    }

    @Test func thePerAddressRefusalIsAnsweredWithTheTokenToo() {
        var signIn = StayingSignedIn(token: "abc", remembers: true)
        let steps = signIn.follow("ERROR: IP address 127.0.0.1 already has an active connection").steps
        #expect(steps.contains(.send("/resume abc")))
        signIn.connected()
        #expect(signIn.follow("*** Enter your email address below ***").steps.contains(.send("/resume abc")))
    }

    @Test func aFreshTokenIsAskedForQuietlyAndKept() {
        var signIn = StayingSignedIn(token: nil, remembers: true)
        #expect(signIn.follow("*** Welcome, alice! ***").steps == [.send("/token")])
        let answer = signIn.follow("*** Resume token: xyz ***")
        #expect(answer.steps == [.store("xyz")] && !answer.show)
        // One the user asks for is kept and shown.
        let asked = signIn.follow("*** Resume token: uvw ***")
        #expect(asked.steps == [.store("uvw")] && asked.show)
        #expect(signIn.userSent("/logout") == [.forget])
        #expect(signIn.token == nil)
    }

    @Test func withoutRememberingNothingIsSentOrKept() {
        var signIn = StayingSignedIn(token: "abc", remembers: false)
        #expect(signIn.follow("*** Enter your email address below ***").steps.isEmpty)
        #expect(signIn.follow("*** Welcome back, alice! ***").steps.isEmpty)
        #expect(signIn.follow("*** Resume token: xyz ***").steps.isEmpty)
    }
}
