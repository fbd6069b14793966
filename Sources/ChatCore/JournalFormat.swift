/// How an append-only journal file is laid out, and how it is read back after a clean stop,
/// a crash or damage, with no I/O: a header naming the format, then records.
///
/// ```
/// chat-journal/1\n
/// C7 4A | length (UInt32, little-endian) | CRC-32C of the length's 4 bytes and the payload | payload
/// ...
/// ```
///
/// A record is written whole or not at all as far as the reader can tell: a crash while
/// appending leaves a *torn tail* (the last record cut short, or followed by zeros a file
/// system left behind), which is cut off; a record that fails its checksum with a good
/// record after it is *damage in the middle*, which must not be skipped silently. The two
/// bytes in front of every record let a reader tell them apart cheaply: it looks for a
/// good record only where those bytes are.
public enum JournalFormat {
    /// The version this code writes and reads. A file of a newer one is refused, not misread.
    public static let version = 1
    public static let magic = Array("chat-journal/".utf8)
    /// The first line of a file of this version.
    public static let header = magic + Array("\(version)\n".utf8)
    /// What stands before every record.
    static let marker: [UInt8] = [0xC7, 0x4A]
    /// Bytes before a record's payload: the marker, the length and the checksum.
    public static let frameOverhead = 10
    /// The longest payload a record may have (a snapshot is not a record).
    public static let maximumRecordLength = 16 << 20

    // MARK: Writing

    /// Appends one record (a payload of 1 to ``maximumRecordLength`` bytes) to `output`.
    public static func append(_ payload: some Collection<UInt8>, to output: inout [UInt8]) {
        precondition((1...maximumRecordLength).contains(payload.count), "a record holds 1 byte to 16 MiB")
        let length = UInt32(payload.count)
        let lengthBytes = (0..<4).map { UInt8(truncatingIfNeeded: length >> (8 * $0)) }
        let checksum = CRC32C.checksum(lengthBytes + payload)
        output += marker
        output += lengthBytes
        output += (0..<4).map { UInt8(truncatingIfNeeded: checksum >> (8 * $0)) }
        output += payload
    }

    // MARK: Reading

    public enum HeaderError: Error, Equatable, Sendable {
        /// The file does not start as a journal does.
        case notAJournal
        /// Written by a newer version: refused rather than misread.
        case newerFormat(Int)
    }

    /// How a file's records end.
    public enum End: Equatable, Sendable {
        /// After the last record, nothing.
        case clean
        /// From this offset on, a record cut short by a crash (or zeros after one): what
        /// follows the last good record is to be cut off.
        case tornTail(offset: Int)
        /// At this offset a record is damaged and a good one follows it: the journal cannot
        /// be replayed past it without losing what comes after.
        case damaged(offset: Int)
    }

    public struct Reading: Equatable, Sendable {
        /// Where each good record's payload is in the bytes, in order.
        public var records: [Range<Int>]
        public var end: End
    }

    /// Reads a whole file.
    /// - Throws: ``HeaderError`` when it is not a journal or of a newer format. A file that
    ///   ends inside its header (a crash while creating it) reads as no records and a torn
    ///   tail at 0.
    public static func read(_ bytes: [UInt8]) throws(HeaderError) -> Reading {
        guard let start = try headerLength(bytes) else { return Reading(records: [], end: .tornTail(offset: 0)) }
        var records: [Range<Int>] = []
        var offset = start
        while offset < bytes.count {
            guard let payload = record(in: bytes, at: offset) else {
                let end: End =
                    goodRecord(in: bytes, after: offset) ? .damaged(offset: offset) : .tornTail(offset: offset)
                return Reading(records: records, end: end)
            }
            records.append(payload)
            offset = payload.upperBound
        }
        return Reading(records: records, end: .clean)
    }

    /// Reads a file given piece by piece, in order, as ``read(_:)`` reads it whole, holding
    /// only what is not yet a whole record: a start replays a journal of any length in
    /// bounded memory. After a record that is not good, nothing more is given, and the rest
    /// of the file is held to tell a torn tail from damage (only a damaged or torn file gets
    /// there).
    public struct Reader: Sendable {
        private var buffer: [UInt8] = []
        /// Where `buffer` starts in the file.
        private var bufferOffset = 0
        private var headerRead = false
        /// Where the first record that is not good starts, once seen.
        private var stopped: Int?

        public init() {}

        /// Takes the next bytes of the file and gives each good record now whole to
        /// `record`, in order: its payload, and where the record starts in the file.
        /// - Throws: ``HeaderError`` when the file is not a journal or of a newer format, or
        ///   what `record` throws.
        public mutating func feed(
            _ bytes: some Collection<UInt8>, record: (ArraySlice<UInt8>, _ offset: Int) throws -> Void
        ) throws {
            buffer.append(contentsOf: bytes)
            guard stopped == nil else { return }
            if !headerRead {
                guard let length = try JournalFormat.headerLength(buffer) else { return }
                consume(length)
                headerRead = true
            }
            var index = 0
            scanning: while true {
                switch JournalFormat.frame(in: buffer, at: index) {
                case .record(let payload):
                    try record(buffer[payload], bufferOffset + index)
                    index = payload.upperBound
                case .incomplete:
                    break scanning
                case .bad:
                    stopped = bufferOffset + index
                    break scanning
                }
            }
            consume(index)
        }

        /// The file ended: how its records end.
        public func finish() -> End {
            guard headerRead else { return .tornTail(offset: 0) }
            guard stopped != nil || !buffer.isEmpty else { return .clean }
            // `buffer` begins with the record that is not good, or cut short.
            return JournalFormat.goodRecord(in: buffer, after: 0)
                ? .damaged(offset: bufferOffset) : .tornTail(offset: bufferOffset)
        }

        private mutating func consume(_ count: Int) {
            buffer.removeFirst(count)
            bufferOffset += count
        }
    }

    /// A header `<magic><version>\n` (this format's, or another's of the same form).
    /// - Returns: the header's length, or `nil` when the bytes end inside a header.
    static func headerLength(
        _ bytes: [UInt8], magic: [UInt8] = magic, version supported: Int = version
    ) throws(HeaderError) -> Int? {
        let prefix = bytes.prefix(magic.count)
        guard prefix.elementsEqual(magic.prefix(prefix.count)) else { throw .notAJournal }
        guard prefix.count == magic.count else { return nil }
        var version = 0
        var index = magic.count
        while index < bytes.count, bytes[index] != UInt8(ascii: "\n") {
            let byte = bytes[index]
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte), index - magic.count < 9 else {
                throw .notAJournal
            }
            version = version * 10 + Int(byte - UInt8(ascii: "0"))
            index += 1
        }
        guard index < bytes.count else { return nil }
        guard index > magic.count, version >= 1 else { throw .notAJournal }
        guard version <= supported else { throw .newerFormat(version) }
        return index + 1
    }

    /// The payload of a good record at `offset`, or `nil`.
    private static func record(in bytes: [UInt8], at offset: Int) -> Range<Int>? {
        if case .record(let payload) = frame(in: bytes, at: offset) { payload } else { nil }
    }

    /// What the bytes at `offset` hold, as far as they go.
    private enum Frame {
        /// A good record, its payload here.
        case record(Range<Int>)
        /// The start of what may yet be a good record: more bytes are needed to tell.
        case incomplete
        /// Not a good record, whatever follows.
        case bad
    }

    private static func frame(in bytes: [UInt8], at offset: Int) -> Frame {
        let available = bytes.count - offset
        for index in 0..<min(available, marker.count) where bytes[offset + index] != marker[index] { return .bad }
        guard available >= 6 else { return .incomplete }
        let length = Int(littleEndian32(bytes, at: offset + 2))
        guard (1...maximumRecordLength).contains(length) else { return .bad }
        guard available >= frameOverhead + length else { return .incomplete }
        let payload = (offset + frameOverhead)..<(offset + frameOverhead + length)
        let checksum = CRC32C.checksum(bytes[(offset + 2)..<(offset + 6)] + bytes[payload])
        return checksum == littleEndian32(bytes, at: offset + 6) ? .record(payload) : .bad
    }

    /// Whether a good record starts anywhere after `offset`.
    private static func goodRecord(in bytes: [UInt8], after offset: Int) -> Bool {
        var index = offset + 1
        while index + frameOverhead <= bytes.count {
            if bytes[index] == marker[0], bytes[index + 1] == marker[1], record(in: bytes, at: index) != nil {
                return true
            }
            index += 1
        }
        return false
    }

    private static func littleEndian32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) }
    }
}
