/// Why a journal cannot be used; the operator reads these at start-up.
package enum JournalError: Error, CustomStringConvertible {
    /// Another process holds the folder.
    case inUse(directory: String, pid: String)
    /// A file operation failed.
    case io(String, path: String, errno: Int32)
    /// Damage in the middle of the journal: replaying past it would lose what follows.
    case damaged(path: String, offset: Int)
    /// Not a journal, or a newer format than this version reads.
    case unreadable(path: String, reason: String)
    /// A snapshot that fails its checksum or cannot be decoded.
    case damagedSnapshot(path: String, reason: String)
    /// The segment starts after records that no file holds.
    case missing(path: String, from: Int64, to: Int64)

    package var description: String {
        switch self {
        case .inUse(let directory, let pid):
            "DATA_DIR \(directory) is in use by another chat-server (PID \(pid)); two processes must not write one journal"
        case .io(let what, let path, let code):
            "cannot \(what) \(path): \(String(cString: strerror(code)))"
        case .damaged(let path, let offset):
            "the journal \(path) is damaged at byte \(offset), with good records after it; "
                + "see docs/OPERATIONS.md, \"Recovering a journal\""
        case .unreadable(let path, let reason):
            "cannot read the journal \(path): \(reason)"
        case .damagedSnapshot(let path, let reason):
            "the snapshot \(path) is damaged (\(reason)); see docs/OPERATIONS.md, \"Recovering a journal\""
        case .missing(let path, let from, let to):
            "the journal's records \(from) to \(to - 1) are missing before \(path); "
                + "see docs/OPERATIONS.md, \"Recovering a journal\""
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
