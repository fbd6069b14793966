import CoreMetrics

/// What a node with `DATA_DIR` counts of its journal (only then, so a node in memory shows
/// no journal series).
package final class JournalMetrics: Sendable {
    private let bytesWritten: Counter
    private let syncs: Timer
    private let writeFailures: Counter
    private let snapshotsWritten: Counter
    private let snapshotsLoaded: Counter
    private let recordsReplayed: Counter

    package init(factory: any MetricsFactory) {
        bytesWritten = Counter(label: "chat_journal_bytes_total", factory: factory)
        syncs = Timer(label: "chat_journal_fsync_seconds", preferredDisplayUnit: .seconds, factory: factory)
        writeFailures = Counter(label: "chat_journal_write_failures_total", factory: factory)
        snapshotsWritten = Counter(
            label: "chat_journal_snapshots_total", dimensions: [("event", "written")], factory: factory)
        snapshotsLoaded = Counter(
            label: "chat_journal_snapshots_total", dimensions: [("event", "loaded")], factory: factory)
        recordsReplayed = Counter(label: "chat_journal_records_replayed_total", factory: factory)
    }

    func wrote(bytes: Int) { bytesWritten.increment(by: Int64(bytes)) }
    /// One `fsync`, and how long it took.
    func synced(in duration: Duration) { syncs.recordNanoseconds(duration.wholeNanoseconds) }
    func writeFailed() { writeFailures.increment() }
    func snapshotWritten() { snapshotsWritten.increment() }
    func snapshotLoaded() { snapshotsLoaded.increment() }
    func replayed(records: Int) { recordsReplayed.increment(by: Int64(records)) }
}

extension Duration {
    fileprivate var wholeNanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}
