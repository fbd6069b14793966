import Testing

@testable import ChatCore

/// A deterministic generator (SplitMix64) so tests know the codes.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct OTPStoreTests {
    let alice = EmailAddress("alice@example.com")!
    let start = ContinuousClock.now
    var generator = SeededGenerator(state: 42)

    @Test mutating func codesAreSixDigits() {
        var store = OTPStore(expiry: .seconds(300), maximumAttempts: 3)
        for _ in 0..<200 {
            let code = store.issue(for: alice, now: start, using: &generator).code
            #expect(code.count == 6)
            #expect(code.allSatisfy(\.isASCII) && code.allSatisfy(\.isNumber))
        }
        #expect(store.count == 1)
        #expect(OTPStore.zeroPadded(42) == "000042")
    }

    @Test mutating func aCodeIsUsableOnce() {
        var store = OTPStore(expiry: .seconds(300), maximumAttempts: 3)
        let code = store.issue(for: alice, now: start, using: &generator).code
        #expect(store.verify(code, for: alice, now: start + .seconds(1)) == .verified)
        #expect(store.verify(code, for: alice, now: start + .seconds(2)) == .noCode)
        #expect(store.count == 0)
    }

    @Test mutating func addressesAreCaseInsensitive() {
        var store = OTPStore(expiry: .seconds(300), maximumAttempts: 3)
        let code = store.issue(for: alice, now: start, using: &generator).code
        #expect(store.verify(code, for: EmailAddress("ALICE@example.com")!, now: start) == .verified)
    }

    @Test mutating func wrongGuessesCountDownThenVoidTheCode() {
        var store = OTPStore(expiry: .seconds(300), maximumAttempts: 3)
        let code = store.issue(for: alice, now: start, using: &generator).code
        let wrong = code == "000000" ? "111111" : "000000"
        #expect(store.verify(wrong, for: alice, now: start) == .invalid(attemptsLeft: 2))
        #expect(store.verify("12ab", for: alice, now: start) == .invalid(attemptsLeft: 1))
        #expect(store.verify(wrong, for: alice, now: start) == .attemptsExhausted)
        // The right code no longer works: it is void.
        #expect(store.verify(code, for: alice, now: start) == .noCode)
    }

    @Test mutating func codesExpire() {
        var store = OTPStore(expiry: .seconds(300), maximumAttempts: 3)
        let code = store.issue(for: alice, now: start, using: &generator).code
        #expect(store.verify(code, for: alice, now: start + .seconds(300)) == .expired)
        #expect(store.count == 0)
    }

    @Test mutating func aNewCodeReplacesTheOld() {
        var store = OTPStore(expiry: .seconds(300), maximumAttempts: 3)
        var first = store.issue(for: alice, now: start, using: &generator).code
        var second = store.issue(for: alice, now: start, using: &generator).code
        while second == first {  // bounded in practice: codes repeat with probability 1e-6
            first = second
            second = store.issue(for: alice, now: start, using: &generator).code
        }
        #expect(store.verify(first, for: alice, now: start) == .invalid(attemptsLeft: 2))
        #expect(store.verify(second, for: alice, now: start) == .verified)
    }

    @Test mutating func revokingWithATicketSparesALaterCode() {
        var store = OTPStore(expiry: .seconds(60), maximumAttempts: 3)
        let first = store.issue(for: alice, now: start, using: &generator)
        let second = store.issue(for: alice, now: start, using: &generator)
        store.revoke(for: alice, ticket: first.ticket)
        #expect(store.count == 1)
        store.revoke(for: alice, ticket: second.ticket)
        #expect(store.count == 0)
    }

    @Test mutating func revokeAndSweep() {
        var store = OTPStore(expiry: .seconds(60), maximumAttempts: 3)
        _ = store.issue(for: alice, now: start, using: &generator)
        store.revoke(for: alice)
        #expect(store.count == 0)
        for index in 0..<100 {
            let email = EmailAddress("user\(index)@example.com")!
            _ = store.issue(for: email, now: start + .seconds(index), using: &generator)
        }
        #expect(store.sweep(now: start + .seconds(100)) == 41)
        #expect(store.count == 59)
        #expect(store.sweep(now: start + .seconds(1000)) == 59)
        #expect(store.count == 0)
    }
}
