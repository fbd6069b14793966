import ChatCore
import NIOConcurrencyHelpers

/// The node's pending OTP codes, shared by its connections. Codes never leave the node
/// that mailed them; whether a code may be asked for at all (bans, throttles) is the hub's
/// decision (``HubCommand/requestCode(_:emailKey:ip:)``).
///
/// Every operation is a short critical section on an in-memory table; no lock is held
/// across I/O (the mail is sent after `issue` returns).
final class OTPService: Sendable {
    private let store: NIOLockedValueBox<OTPStore>

    init(expiry: Duration, maximumAttempts: Int) {
        self.store = NIOLockedValueBox(OTPStore(expiry: expiry, maximumAttempts: maximumAttempts))
    }

    /// A fresh code for `email` from the system's cryptographically secure generator,
    /// replacing any earlier one.
    func issue(for email: EmailAddress) -> OTPStore.IssuedCode {
        var generator = SystemRandomNumberGenerator()
        let now = ContinuousClock.now
        return store.withLockedValue { $0.issue(for: email, now: now, using: &generator) }
    }

    func verify(_ guess: Substring, for email: EmailAddress) -> OTPStore.Verification {
        let now = ContinuousClock.now
        return store.withLockedValue { $0.verify(guess, for: email, now: now) }
    }

    func revoke(for email: EmailAddress, ticket: UInt64) {
        store.withLockedValue { $0.revoke(for: email, ticket: ticket) }
    }

    /// Drops expired codes, so memory does not grow.
    func sweep() {
        let now = ContinuousClock.now
        store.withLockedValue { _ = $0.sweep(now: now) }
    }

    var pendingCount: Int { store.withLockedValue { $0.count } }
}
