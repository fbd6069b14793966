import ChatHub

/// Which pushed entries (``PublishedAppend``) a node may apply: only those that follow the
/// last entry it has, in the log's order. Each push names the entry before it, so a push
/// the node missed, or an entry appended without one, shows as a push that does not
/// follow: a gap, after which the node reads the stream from where it is before it takes
/// pushes again. A pure state machine: the reader drives it on its event loop.
///
/// While the stream is read (after connecting, after a gap) pushes are kept, not taken:
/// once the read is applied, those that follow it are taken and the rest dropped (they were
/// in the read, or there is another gap).
struct EntryChain {
    /// How many pushes are kept while the stream is read. Beyond it they are dropped: the
    /// next push then does not follow, and the stream is read again from there.
    static let keptLimit = 10_000

    /// The entry the next push must follow (`nil` while the stream is read).
    private(set) var tail: StreamID?
    /// Pushes that came while the stream was read.
    private var kept: [PublishedAppend.Pushed] = []
    /// Entries taken, not yet handed to be applied.
    private var taken: [StreamEntry] = []
    /// Whether a push did not follow: once the entries taken before it are applied, the
    /// stream must be read.
    private(set) var isBroken = false

    /// Whether something waits to be handed over (entries to apply, or a gap to read past).
    var hasWork: Bool { !taken.isEmpty || isBroken }

    /// A push came. - Returns: whether it made work where there was none.
    mutating func pushed(_ pushed: PublishedAppend.Pushed) -> Bool {
        let hadWork = hasWork
        guard let tail, !isBroken else {
            if kept.count < Self.keptLimit { kept.append(pushed) } else { kept.removeAll() }
            return false
        }
        guard let last = pushed.entries.last?.id, last > tail else { return false }
        if pushed.previous == tail {
            taken.append(contentsOf: pushed.entries)
            self.tail = last
        } else {
            // Kept: the read after the gap may end right before it.
            isBroken = true
            self.tail = nil
            kept = [pushed]
        }
        return !hadWork
    }

    /// The stream was read and applied up to `last`: pushes are taken from there on, the
    /// kept ones first.
    mutating func readEnded(at last: StreamID) {
        tail = last
        isBroken = false
        let pending = kept
        kept.removeAll()
        for push in pending { _ = pushed(push) }
    }

    /// The stream is to be read (the reader reconnected or paused): pushes are kept until
    /// it has been, and what was taken is dropped (the read brings it).
    mutating func readAgain() {
        tail = nil
        isBroken = false
        taken.removeAll()
    }

    /// Nothing was pushed for a while: the stream is read, in case pushes stopped coming
    /// (those that come meanwhile are kept).
    mutating func checkStream() {
        guard !isBroken else { return }
        isBroken = true
        tail = nil
    }

    /// What to do next: apply these entries (possibly none), then, when `mustRead`, read the
    /// stream first.
    mutating func takeWork() -> (entries: [StreamEntry], mustRead: Bool) {
        defer { taken.removeAll(keepingCapacity: true) }
        let mustRead = isBroken
        return (taken, mustRead)
    }
}
