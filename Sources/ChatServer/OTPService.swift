import ChatCore
import Synchronization

/// The process-wide store of pending OTP codes, shared by all connections.
///
/// Every operation is a short critical section on an in-memory dictionary; no lock is
/// held across I/O (the mail is sent after `issue` returns).
final class OTPService: Sendable {
    private let store: Mutex<OTPStore>

    init(expiry: Duration, maximumAttempts: Int) {
        self.store = Mutex(OTPStore(expiry: expiry, maximumAttempts: maximumAttempts))
    }

    /// A fresh code for `email` from the system's cryptographically secure generator.
    func issue(for email: EmailAddress) -> OTPStore.IssuedCode {
        var generator = SystemRandomNumberGenerator()
        let now = ContinuousClock.now
        return store.withLock { $0.issue(for: email, now: now, using: &generator) }
    }

    func verify(_ guess: Substring, for email: EmailAddress) -> OTPStore.Verification {
        let now = ContinuousClock.now
        return store.withLock { $0.verify(guess, for: email, now: now) }
    }

    func revoke(for email: EmailAddress, ticket: UInt64) {
        store.withLock { $0.revoke(for: email, ticket: ticket) }
    }

    @discardableResult
    func sweep() -> Int {
        let now = ContinuousClock.now
        return store.withLock { $0.sweep(now: now) }
    }

    var pendingCount: Int { store.withLock { $0.count } }
}
