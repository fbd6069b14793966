import ChatCore
import NIOConcurrencyHelpers

/// The process-wide store of pending OTP codes and the throttles on asking for them,
/// shared by all connections.
///
/// Every operation is a short critical section on in-memory tables; no lock is held across
/// I/O (the mail is sent after `issue` returns).
final class OTPService: Sendable {
    struct Throttles: Sendable {
        var interval: Duration
        var perAddressPerHour: Int
        var perClientPerHour: Int
        var perMinute: Int
    }

    private struct State: Sendable {
        var store: OTPStore
        var addressInterval: RateLimit<String>?
        var addressHourly: RateLimit<String>
        var clientHourly: RateLimit<String>
        var serverWide: RateLimit<Int>
    }

    private let state: NIOLockedValueBox<State>

    init(expiry: Duration, maximumAttempts: Int, throttles: Throttles) {
        self.state = NIOLockedValueBox(
            State(
                store: OTPStore(expiry: expiry, maximumAttempts: maximumAttempts),
                addressInterval: throttles.interval > .zero ? RateLimit(limit: 1, per: throttles.interval) : nil,
                addressHourly: RateLimit(limit: throttles.perAddressPerHour, per: .seconds(3600)),
                clientHourly: RateLimit(limit: throttles.perClientPerHour, per: .seconds(3600)),
                serverWide: RateLimit(limit: throttles.perMinute, per: .seconds(60))
            ))
    }

    /// A fresh code for `email` from the system's cryptographically secure generator,
    /// unless a throttle says no: per address (interval and hourly cap, which also stops
    /// brute force by asking for new codes), per client IP, and server-wide.
    func issue(for email: EmailAddress, client: String) -> Result<OTPStore.IssuedCode, UserError> {
        var generator = SystemRandomNumberGenerator()
        let now = ContinuousClock.now
        return state.withLockedValue { state in
            let waits = [
                state.addressInterval?.retryAfter(email.key, now: now),
                state.addressHourly.retryAfter(email.key, now: now),
                state.clientHourly.retryAfter(client, now: now),
                state.serverWide.retryAfter(0, now: now),
            ].compactMap { $0 }
            if let longest = waits.max() {
                return .failure(.tooManyCodes(retryAfterSeconds: longest.roundedUpSeconds))
            }
            state.addressInterval?.record(email.key, now: now)
            state.addressHourly.record(email.key, now: now)
            state.clientHourly.record(client, now: now)
            state.serverWide.record(0, now: now)
            return .success(state.store.issue(for: email, now: now, using: &generator))
        }
    }

    /// Checks a guess. A code that logs the user in stops counting against its address:
    /// the per-address spacing and hourly cap are there against mail floods and guessing,
    /// and a used code is neither (an attacker's codes never are). Per-IP and server-wide
    /// counts stay, so a flood from one client is still capped.
    func verify(_ guess: Substring, for email: EmailAddress) -> OTPStore.Verification {
        let now = ContinuousClock.now
        return state.withLockedValue { state in
            let verification = state.store.verify(guess, for: email, now: now)
            if verification == .verified {
                // A new code replaces the old one, so the code used was the latest asked for.
                state.addressInterval?.forgetLatest(email.key)
                state.addressHourly.forgetLatest(email.key)
            }
            return verification
        }
    }

    func revoke(for email: EmailAddress, ticket: UInt64) {
        state.withLockedValue { $0.store.revoke(for: email, ticket: ticket) }
    }

    /// Drops expired codes and throttle entries, so memory does not grow.
    func sweep() {
        let now = ContinuousClock.now
        state.withLockedValue { state in
            state.store.sweep(now: now)
            state.addressInterval?.sweep(now: now)
            state.addressHourly.sweep(now: now)
            state.clientHourly.sweep(now: now)
            state.serverWide.sweep(now: now)
        }
    }

    var pendingCount: Int { state.withLockedValue { $0.store.count } }
}
