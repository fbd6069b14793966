/// How a snapshot of the shared state is kept in a file next to the journal, with no I/O:
/// a header naming the format, the contents' length and CRC-32C, then the contents.
///
/// ```
/// chat-snapshot-file/1\n
/// length (UInt64, little-endian) | CRC-32C of the contents (UInt32, little-endian) | contents
/// ```
///
/// A snapshot is written under a temporary name and renamed into place once synced, so a
/// crash never leaves half of one under its real name; one that fails its length or
/// checksum was damaged afterwards, and is refused rather than loaded.
public enum SnapshotFileFormat {
    public static let version = 1
    public static let magic = Array("chat-snapshot-file/".utf8)
    public static let header = magic + Array("\(version)\n".utf8)

    public enum ReadError: Error, Equatable, Sendable {
        /// Not a snapshot file.
        case notASnapshot
        /// Written by a newer version: refused rather than misread.
        case newerFormat(Int)
        /// Cut short, too long or failing its checksum.
        case damaged
    }

    /// The file's bytes for `contents`.
    public static func file(_ contents: [UInt8]) -> [UInt8] {
        let length = UInt64(contents.count)
        let checksum = CRC32C.checksum(contents)
        return header + (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * $0)) }
            + (0..<4).map { UInt8(truncatingIfNeeded: checksum >> (8 * $0)) } + contents
    }

    /// The contents of a whole file.
    public static func contents(of bytes: [UInt8]) throws(ReadError) -> ArraySlice<UInt8> {
        let headerLength: Int?
        do {
            headerLength = try JournalFormat.headerLength(bytes, magic: magic, version: version)
        } catch .newerFormat(let version) {
            throw .newerFormat(version)
        } catch {
            throw .notASnapshot
        }
        guard let start = headerLength else { throw .damaged }
        guard bytes.count - start >= 12 else { throw .damaged }
        let length = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[start + $1]) << (8 * $1) }
        let checksum = (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[start + 8 + $1]) << (8 * $1) }
        guard UInt64(bytes.count - start - 12) == length else { throw .damaged }
        let contents = bytes[(start + 12)...]
        guard CRC32C.checksum(contents) == checksum else { throw .damaged }
        return contents
    }
}
