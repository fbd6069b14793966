import ChatCore
import Testing

@testable import ChatHub

/// The resume tokens' table on its own: what it keeps, for how long, and for whom.
struct ResumeTokensTests {
    let start = LogTime(milliseconds: 1_000_000)

    @Test func aTokenIsValidUntilItsExpiryThenSwept() {
        var tokens = ResumeTokens()
        tokens.issue("h1", for: "alice@example.com", expires: start + .seconds(60))
        #expect(tokens.account(of: "h1", at: start) == "alice@example.com")
        #expect(tokens.account(of: "h1", at: start + .seconds(60)) == nil)
        #expect(tokens.account(of: "unknown", at: start) == nil)
        tokens.left("alice@example.com", as: "alice", from: "#den")
        #expect(tokens.place(of: "alice@example.com") == .init(name: "alice", roomKey: "#den"))
        tokens.sweep(at: start + .seconds(61))
        #expect(tokens.count == 0 && tokens.place(of: "alice@example.com") == nil)
    }

    @Test func placesAreKeptOnlyForAccountsWithTokens() {
        var tokens = ResumeTokens()
        tokens.left("bob@example.com", as: "bob", from: "#den")
        #expect(tokens.place(of: "bob@example.com") == nil)
    }

    @Test func revokingOneLeavesTheOthersAndRevokingAllForgetsTheAccount() {
        var tokens = ResumeTokens()
        tokens.issue("h1", for: "alice@example.com", expires: start + .seconds(60))
        tokens.issue("h2", for: "alice@example.com", expires: start + .seconds(60))
        tokens.issue("h3", for: "carol@example.com", expires: start + .seconds(60))
        tokens.left("alice@example.com", as: "alice", from: "#general")
        tokens.revoke("h1")
        #expect(tokens.account(of: "h1", at: start) == nil && tokens.account(of: "h2", at: start) != nil)
        #expect(tokens.hasTokens("alice@example.com"))
        tokens.revokeAll(of: "alice@example.com")
        #expect(!tokens.hasTokens("alice@example.com") && tokens.place(of: "alice@example.com") == nil)
        #expect(tokens.account(of: "h3", at: start) == "carol@example.com")
    }

    @Test func aResumeReplacesTheAccountsSessionOnEveryReplicaAlike() {
        let configuration = HubState.Configuration(historySize: 10, maxConnectionsPerIP: 1)
        var state = HubState(configuration: configuration)
        let old = SessionAddress(id: 1, shard: 0)
        let new = SessionAddress(id: 2, shard: 0)
        _ = state.apply(.admit(old, ip: "10.0.0.1", display: "10.0.0.1"), at: start)
        _ = state.apply(
            .login(old, username: "alice", emailKey: "alice@example.com", ip: "10.0.0.1", isOperator: false), at: start)
        _ = state.apply(.issueToken(1, hash: "h1"), at: start)
        // The same address: refused, but resumable while alice holds its only slot.
        let refused = state.apply(.admit(new, ip: "10.0.0.1", display: "10.0.0.1"), at: start)
        #expect(
            refused.contains { effect in
                if case .answer(_, .admission(.refusedUnlessResumed)) = effect { return true }
                return false
            })
        let resumed = state.apply(
            .resume(new, hash: "h1", ip: "10.0.0.1", display: "10.0.0.1", admitted: false), at: start)
        #expect(
            resumed.contains { effect in
                if case .disconnect(let address, _) = effect { return address == old }
                return false
            })
        #expect(
            resumed.contains { effect in
                if case .answer(_, .resume(.accepted(let emailKey, let place))) = effect {
                    return emailKey == "alice@example.com" && place?.name == "alice"
                }
                return false
            })
        #expect(state.connections[2] == "10.0.0.1" && state.connections[1] == nil)
    }
}
