import ChatCore
import ChatHub
import NIOConcurrencyHelpers

/// The node's pending OTP codes, shared by its connections. Codes never leave the node
/// that mailed them; whether a code may be asked for at all (bans, throttles) is the hub's
/// decision (``HubCommand/requestCode(_:emailKey:ip:)``).
///
/// Every operation is a short critical section on an in-memory table; no lock is held
/// across I/O (the mail is sent after `issue` returns).
final class OTPService: Sendable {
    private let store: NIOLockedValueBox<OTPStore>
    private let clock: @Sendable () -> ContinuousClock.Instant

    /// - Parameter clock: the time codes expire by (``ServerClock/now``).
    init(
        expiry: Duration, maximumAttempts: Int,
        clock: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) {
        self.store = NIOLockedValueBox(OTPStore(expiry: expiry, maximumAttempts: maximumAttempts))
        self.clock = clock
    }

    /// A fresh code for `email` from the system's cryptographically secure generator,
    /// replacing any earlier one.
    func issue(for email: EmailAddress) -> OTPStore.IssuedCode {
        let now = clock()
        return store.withLockedValue { store in
            var generator = SecureRandom()
            return store.issue(for: email, now: now, using: &generator)
        }
    }

    func verify(_ guess: Substring, for email: EmailAddress) -> OTPStore.Verification {
        let now = clock()
        return store.withLockedValue { $0.verify(guess, for: email, now: now) }
    }

    func revoke(for email: EmailAddress, ticket: UInt64) {
        store.withLockedValue { $0.revoke(for: email, ticket: ticket) }
    }

    /// Drops expired codes, so memory does not grow.
    func sweep() {
        let now = clock()
        store.withLockedValue { _ = $0.sweep(now: now) }
    }

    var pendingCount: Int { store.withLockedValue { $0.count } }
}

/// The system's cryptographically secure generator, with a stored byte so that each
/// instance has an address of its own.
///
/// `SystemRandomNumberGenerator` has no stored properties; ThreadSanitizer's checks of
/// `inout` accesses take every zero-sized value at one shared address, and on CI reported
/// the codes' generator as a race between connections (and, when it was captured by the
/// lock's closure, crashed in its shadow memory).
private struct SecureRandom: RandomNumberGenerator {
    private var system = SystemRandomNumberGenerator()
    private var distinctAddress: UInt8 = 0

    mutating func next() -> UInt64 { system.next() }
}
