import ChatCore

/// How many OTP codes may be asked for: per address (spacing and hourly cap, which also
/// stop brute force by asking for fresh codes), per client IP, and server-wide.
package struct CodeRequestThrottle: Codable, Sendable {
    package struct Limits: Codable, Equatable, Sendable {
        package var interval: Duration
        package var perAddressPerHour: Int
        package var perClientPerHour: Int
        package var perMinute: Int

        package init(interval: Duration, perAddressPerHour: Int, perClientPerHour: Int, perMinute: Int) {
            self.interval = interval
            self.perAddressPerHour = perAddressPerHour
            self.perClientPerHour = perClientPerHour
            self.perMinute = perMinute
        }
    }

    private var addressInterval: RateLimit<String>?
    private var addressHourly: RateLimit<String>
    private var clientHourly: RateLimit<String>
    private var serverWide: RateLimit<Int>

    init(_ limits: Limits) {
        addressInterval = limits.interval > .zero ? RateLimit(limit: 1, per: limits.interval) : nil
        addressHourly = RateLimit(limit: limits.perAddressPerHour, per: .seconds(3600))
        clientHourly = RateLimit(limit: limits.perClientPerHour, per: .seconds(3600))
        serverWide = RateLimit(limit: limits.perMinute, per: .seconds(60))
    }

    /// Counts a request when every throttle allows it.
    /// - Returns: `nil` when allowed and counted, else the longest wait.
    mutating func attempt(emailKey: String, client: String, at now: LogTime) -> Duration? {
        let waits = [
            addressInterval?.retryAfter(emailKey, now: now),
            addressHourly.retryAfter(emailKey, now: now),
            clientHourly.retryAfter(client, now: now),
            serverWide.retryAfter(0, now: now),
        ].compactMap { $0 }
        if let longest = waits.max() { return longest }
        addressInterval?.record(emailKey, now: now)
        addressHourly.record(emailKey, now: now)
        clientHourly.record(client, now: now)
        serverWide.record(0, now: now)
        return nil
    }

    /// A code used to log in stops counting against its address: the per-address spacing
    /// and hourly cap are there against mail floods and guessing, and a used code is
    /// neither (an attacker's codes never are). Per-IP and server-wide counts stay, so a
    /// flood from one client is still capped. A new code replaces the old one, so the code
    /// used was the latest asked for.
    mutating func codeUsed(emailKey: String) {
        addressInterval?.forgetLatest(emailKey)
        addressHourly.forgetLatest(emailKey)
    }

    /// Counts a `/resume` against the client's hourly count and the server-wide rate (not
    /// against an address: the token names none until it is checked).
    /// - Returns: `nil` when allowed and counted, else the longest wait.
    mutating func attemptResume(client: String, at now: LogTime) -> Duration? {
        let waits = [clientHourly.retryAfter(client, now: now), serverWide.retryAfter(0, now: now)].compactMap { $0 }
        if let longest = waits.max() { return longest }
        clientHourly.record(client, now: now)
        serverWide.record(0, now: now)
        return nil
    }

    /// A valid token does not count: only guesses are throttled.
    mutating func resumeSucceeded(client: String) {
        clientHourly.forgetLatest(client)
        serverWide.forgetLatest(0)
    }

    mutating func sweep(at now: LogTime) {
        addressInterval?.sweep(now: now)
        addressHourly.sweep(now: now)
        clientHourly.sweep(now: now)
        serverWide.sweep(now: now)
    }
}
