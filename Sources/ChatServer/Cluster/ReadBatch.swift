/// How many entries one `XREAD` asks for. Redis closes a client whose reply outgrows its
/// `client-output-buffer-limit`; a node far behind would then ask for the same too-large
/// batch after every reconnect and never catch up. So a read that failed halves the next
/// one (down to ``minimum``), and each full read that succeeded doubles it again (up to
/// ``maximum``).
struct ReadBatch: Sendable {
    static let maximum = 1000
    static let minimum = 10

    private(set) var count = Self.maximum

    /// The read failed (its connection closed, whatever the cause).
    mutating func failed() {
        count = max(Self.minimum, count / 2)
    }

    /// A read succeeded with `entries` entries.
    mutating func succeeded(entries: Int) {
        if entries >= count { count = min(Self.maximum, count * 2) }
    }
}
