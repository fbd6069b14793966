/// How many entries one `XREAD` asks for. Redis closes a client whose reply outgrows its
/// `client-output-buffer-limit`; a node far behind would then ask for the same too-large
/// batch after every reconnect and never catch up. So a read that Redis closed halves the
/// next one (down to ``minimum``), and each full read that succeeded doubles it again (up
/// to ``maximum``).
///
/// Which closes were Redis's own is known once the reader is back: a read that failed
/// against the same Redis process (the same `run_id`) was closed by it; one that failed
/// because Redis restarted (another `run_id`) says nothing about the batch, and does not
/// halve it.
package struct ReadBatch: Sendable {
    static let maximum = 1000
    static let minimum = 10

    private(set) var count = Self.maximum
    /// The `run_id` of the Redis the reader last connected to.
    private var runID: String?
    /// Whether a read failed since the reader connected.
    private var readFailed = false

    /// The read failed (its connection closed, whatever the cause): halve at once. For
    /// catching up while joining, where one more try costs little either way.
    mutating func failed() {
        count = max(Self.minimum, count / 2)
    }

    /// The reader's read failed; whether to halve is decided when it is back
    /// (``connected(toRun:)``).
    mutating func readerFailed() {
        readFailed = true
    }

    /// The reader connected to the Redis process whose `run_id` is `id` (`nil`: unknown).
    /// - Returns: whether the batch was halved (a read failed against this same process).
    mutating func connected(toRun id: String?) -> Bool {
        defer { (runID, readFailed) = (id, false) }
        guard readFailed, let id, id == runID else { return false }
        failed()
        return true
    }

    /// A read succeeded with `entries` entries.
    mutating func succeeded(entries: Int) {
        if entries >= count { count = min(Self.maximum, count * 2) }
    }

    /// The `run_id` in an `INFO server` reply.
    static func runID(inInfo text: String) -> String? {
        text.split(whereSeparator: \.isNewline).first { $0.hasPrefix("run_id:") }.map {
            String($0.dropFirst("run_id:".count))
        }
    }
}
