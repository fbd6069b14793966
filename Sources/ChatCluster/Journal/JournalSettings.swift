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

    public init(directory: String, fsync: Fsync) {
        self.directory = directory
        self.fsync = fsync
    }
}
