/// The one-time codes waiting to be typed in, one per e-mail address.
///
/// Codes are 6 decimal digits, valid for `expiry`, usable once, void after
/// `maximumAttempts` wrong guesses; a new code for an address replaces the old one.
/// Only a salted digest of each code is kept, and guesses are compared digest to digest
/// (fixed-width integers, so the comparison takes the same time whatever matches).
///
/// The store is a value with no locking and no clock of its own: its owner serialises
/// access and passes the time in, which keeps it deterministic under test.
public struct OTPStore: Sendable {
    public let expiry: Duration
    public let maximumAttempts: Int

    private struct Entry: Sendable {
        var salt: UInt64
        var digest: UInt64
        var expires: ContinuousClock.Instant
        var attemptsLeft: Int
    }

    private var entries: [String: Entry] = [:]

    public init(expiry: Duration, maximumAttempts: Int) {
        precondition(maximumAttempts >= 1)
        self.expiry = expiry
        self.maximumAttempts = maximumAttempts
    }

    /// The outcome of a guess.
    public enum Verification: Equatable, Sendable {
        case verified
        /// Wrong code; the code stays valid for `attemptsLeft` more guesses.
        case invalid(attemptsLeft: Int)
        /// Wrong code and no guesses left: the code is void.
        case attemptsExhausted
        case expired
        /// No code is pending for the address (never issued, used, voided or swept).
        case noCode
    }

    /// A code just issued, and the ticket that names this issue of it.
    public struct IssuedCode: Sendable {
        /// The code, to be mailed and then forgotten.
        public let code: String
        /// Lets the requester revoke exactly this code, not a later one for the same address.
        public let ticket: UInt64
    }

    /// Creates a new code for `email`, replacing any earlier one.
    /// - Returns: the code, to be mailed and then forgotten by the caller.
    public mutating func issue(
        for email: EmailAddress,
        now: ContinuousClock.Instant,
        using generator: inout some RandomNumberGenerator
    ) -> IssuedCode {
        let number = UInt32.random(in: 0..<1_000_000, using: &generator)
        let code = Self.zeroPadded(number)
        let salt = generator.next()
        entries[email.key] = Entry(
            salt: salt,
            digest: Self.digest(code, salt: salt),
            expires: now + expiry,
            attemptsLeft: maximumAttempts
        )
        return IssuedCode(code: code, ticket: salt)
    }

    /// Checks a guess; a correct guess consumes the code.
    public mutating func verify(
        _ guess: some StringProtocol,
        for email: EmailAddress,
        now: ContinuousClock.Instant
    ) -> Verification {
        guard var entry = entries[email.key] else { return .noCode }
        guard now < entry.expires else {
            entries[email.key] = nil
            return .expired
        }
        if Self.digest(guess, salt: entry.salt) == entry.digest {
            entries[email.key] = nil
            return .verified
        }
        entry.attemptsLeft -= 1
        if entry.attemptsLeft <= 0 {
            entries[email.key] = nil
            return .attemptsExhausted
        }
        entries[email.key] = entry
        return .invalid(attemptsLeft: entry.attemptsLeft)
    }

    /// Forgets the code for `email`, e.g. when its mail could not be sent or the
    /// connection that asked for it is gone; with a `ticket`, only if it is still that code.
    public mutating func revoke(for email: EmailAddress, ticket: UInt64? = nil) {
        guard let entry = entries[email.key] else { return }
        if let ticket, entry.salt != ticket { return }
        entries[email.key] = nil
    }

    /// Removes every expired code.
    /// - Returns: how many were removed.
    @discardableResult
    public mutating func sweep(now: ContinuousClock.Instant) -> Int {
        let before = entries.count
        entries = entries.filter { now < $0.value.expires }
        return before - entries.count
    }

    /// How many codes are pending.
    public var count: Int { entries.count }

    static func zeroPadded(_ number: UInt32) -> String {
        let digits = String(number)
        return String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    /// A keyed digest of a code. `Hasher` is seeded randomly per process, and the salt
    /// is random per code, so digests can't be precomputed or compared across entries.
    private static func digest(_ code: some StringProtocol, salt: UInt64) -> UInt64 {
        var hasher = Hasher()
        hasher.combine(salt)
        for byte in code.utf8 { hasher.combine(byte) }
        hasher.combine(code.utf8.count)
        return UInt64(bitPattern: Int64(hasher.finalize()))
    }
}
