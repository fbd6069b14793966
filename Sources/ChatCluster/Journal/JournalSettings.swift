/// Where a single node keeps its hub log on disk (`DATA_DIR`), and how surely.
public struct JournalSettings: Sendable, Equatable {
    /// `DATA_FSYNC`: when a record is on disk, not only in the kernel's cache.
    public enum Fsync: String, Sendable, Equatable, CaseIterable {
        /// Before the command's effects go out: what anyone saw survives a power cut.
        case always
        /// Once a second: a power cut (not a crash of the process) may lose the last second.
        case interval
    }

    public var directory: String
    public var fsync: Fsync
    /// `DATA_SNAPSHOT_SECONDS`: how often the state is written whole, so that a start
    /// replays only the journal after it and older journal files can go.
    public var snapshotInterval: Duration
    /// `DATA_SNAPSHOT_ENTRIES`: records after which the next snapshot comes sooner.
    public var snapshotEntries: Int
    /// `DATA_RECOVERY=salvage`: start from what can be read (a damaged snapshot is passed
    /// over for the one before it, a journal damaged in the middle is cut at the damage)
    /// instead of refusing to start.
    public var salvage: Bool

    public init(
        directory: String, fsync: Fsync, snapshotInterval: Duration = .seconds(300), snapshotEntries: Int = 100_000,
        salvage: Bool = false
    ) {
        self.directory = directory
        self.fsync = fsync
        self.snapshotInterval = snapshotInterval
        self.snapshotEntries = snapshotEntries
        self.salvage = salvage
    }
}
