import ChatHub

/// When a node writes a snapshot of the state and how far the log behind it may go: every
/// interval, or sooner once the log has grown by a number of records (appends: a log entry
/// holds a call's worth, ``LogRecord``); each snapshot is
/// written before the log is trimmed behind the *previous* one, so a node that loaded that
/// one, or reads slowly, has an interval to read on. When nothing new came, the log is
/// trimmed behind the latest snapshot. Nothing of a lost log is carried into a fresh one.
///
/// Pure and generic over the clock: the snapshot writer carries out its steps, tests
/// advance a manual clock.
package struct SnapshotSchedule<Clock: _Concurrency.Clock>: Sendable where Clock.Duration == Duration {
    let clock: Clock
    let interval: Duration
    /// Records (``LogRecord``) applied after which the next try is due.
    let entries: Int64

    private var lastAttempt: Clock.Instant
    private var appliedThen: Int64
    /// The entry the latest snapshot written includes, the point the log was last trimmed
    /// to, and the epoch both belong to.
    private var written: StreamID?
    private var trimmedTo: StreamID?
    private var writtenIn: String?

    /// - Parameter recordsApplied: how many records the node has applied by now (any count
    ///   that grows by one per record applied: only its growth is compared).
    init(clock: Clock, interval: Duration, entries: Int64, recordsApplied: Int64) {
        self.clock = clock
        self.interval = interval
        self.entries = entries
        lastAttempt = clock.now
        appliedThen = recordsApplied
    }

    /// Whether it is time to try: an interval since the last try, or `entries` more records
    /// applied. A try counts whether or not it writes.
    mutating func isDue(recordsApplied: Int64) -> Bool {
        guard lastAttempt.duration(to: clock.now) >= interval || recordsApplied - appliedThen >= entries else {
            return false
        }
        (lastAttempt, appliedThen) = (clock.now, recordsApplied)
        return true
    }

    /// Another node holds the lease: what this one wrote is no longer the latest.
    mutating func leaseLost() {
        (written, trimmedTo) = (nil, nil)
    }

    enum Step: Equatable {
        /// Nothing to write or trim.
        case nothing
        /// Nothing new since the latest snapshot: trim the log behind it.
        case trim(to: StreamID)
        /// Write a snapshot; once it is stored, trim behind the previous one, if any.
        case write(thenTrimTo: StreamID?)
    }

    /// What to do with a state that includes the log up to `upTo` in `epoch`; without
    /// `trimming`, snapshots are written and the log is kept whole.
    mutating func next(upTo: StreamID, epoch: String, trimming: Bool = true) -> Step {
        guard upTo > .zero else { return .nothing }
        if epoch != writtenIn { (written, trimmedTo, writtenIn) = (nil, nil, epoch) }
        guard upTo != written else {
            guard let written, trimmedTo != written, trimming else { return .nothing }
            return .trim(to: written)
        }
        return .write(thenTrimTo: trimming ? written : nil)
    }

    /// The log was trimmed behind `point`.
    mutating func trimmed(to point: StreamID) {
        trimmedTo = point
    }

    /// A snapshot up to `upTo` is stored.
    mutating func wrote(upTo: StreamID) {
        written = upTo
    }
}
