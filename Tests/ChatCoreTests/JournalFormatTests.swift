import Testing

@testable import ChatCore

/// The journal's file format read back after a clean stop, a crash and damage.
@Suite struct JournalFormatTests {
    /// A header and three records of different sizes; where each record starts.
    private func journal() -> (bytes: [UInt8], payloads: [[UInt8]], starts: [Int]) {
        let payloads: [[UInt8]] = [Array("first".utf8), Array(repeating: 0xC7, count: 300), [0x4A]]
        var bytes = JournalFormat.header
        var starts: [Int] = []
        for payload in payloads {
            starts.append(bytes.count)
            JournalFormat.append(payload, to: &bytes)
        }
        return (bytes, payloads, starts)
    }

    private func payloads(_ reading: JournalFormat.Reading, in bytes: [UInt8]) -> [[UInt8]] {
        reading.records.map { Array(bytes[$0]) }
    }

    @Test func theChecksumIsCRC32C() {
        // The check value of the CRC-32C catalogue entry.
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    @Test func recordsReadBackAsWritten() throws {
        let (bytes, written, _) = journal()
        #expect(bytes.starts(with: Array("chat-journal/1\n".utf8)))
        let reading = try JournalFormat.read(bytes)
        #expect(payloads(reading, in: bytes) == written)
        #expect(reading.end == .clean)
    }

    /// A crash while the last record was written: wherever it was cut, the records before it
    /// are kept and the rest is a torn tail from where that record began.
    @Test func aRecordCutShortAnywhereIsATornTail() throws {
        let (bytes, written, starts) = journal()
        for cut in (starts[2] + 1)..<bytes.count {
            let reading = try JournalFormat.read(Array(bytes[..<cut]))
            #expect(payloads(reading, in: bytes) == Array(written.prefix(2)), "cut at \(cut)")
            #expect(reading.end == .tornTail(offset: starts[2]), "cut at \(cut)")
        }
        // Zeros a file system left after the last record are a torn tail too.
        let padded = bytes + [UInt8](repeating: 0, count: 4096)
        #expect(
            try JournalFormat.read(padded)
                == .init(records: try JournalFormat.read(bytes).records, end: .tornTail(offset: bytes.count)))
    }

    /// A flipped bit in any byte of a record that has a good one after it is damage in the
    /// middle, not a tail to cut off; the records before it are still read.
    @Test func aDamagedRecordWithAGoodOneAfterItIsDamageInTheMiddle() throws {
        let (bytes, written, starts) = journal()
        for index in starts[1]..<starts[2] {
            var damaged = bytes
            damaged[index] ^= 0x10
            let reading = try JournalFormat.read(damaged)
            #expect(payloads(reading, in: damaged) == [written[0]], "byte \(index)")
            #expect(reading.end == .damaged(offset: starts[1]), "byte \(index)")
        }
    }

    @Test func aFileThatIsNotAJournalOrOfANewerFormatIsRefused() throws {
        #expect(throws: JournalFormat.HeaderError.newerFormat(2)) {
            try JournalFormat.read(Array("chat-journal/2\n".utf8))
        }
        #expect(throws: JournalFormat.HeaderError.notAJournal) { try JournalFormat.read(Array("hello\n".utf8)) }
        #expect(throws: JournalFormat.HeaderError.notAJournal) {
            try JournalFormat.read(Array("chat-journal/x\n".utf8))
        }
        #expect(throws: JournalFormat.HeaderError.notAJournal) {
            try JournalFormat.read(Array("chat-journal/0\n".utf8))
        }
        // A crash while the file was being created: an empty journal, cut at 0.
        for partial in ["", "chat-jou", "chat-journal/1"] {
            #expect(try JournalFormat.read(Array(partial.utf8)) == .init(records: [], end: .tornTail(offset: 0)))
        }
    }
}

/// The same file given piece by piece, as a start reads a long journal, reads as it does whole.
@Suite struct JournalReaderTests {
    /// The records and the end a ``JournalFormat/Reader`` finds in `bytes` given in pieces of
    /// `size` bytes, as ranges of the whole file.
    private func readInPieces(_ bytes: [UInt8], size: Int) throws -> JournalFormat.Reading {
        var reader = JournalFormat.Reader()
        var records: [Range<Int>] = []
        var offset = 0
        while offset < bytes.count {
            let piece = bytes[offset..<min(offset + size, bytes.count)]
            try reader.feed(piece) { payload, start in
                #expect(payload.elementsEqual(bytes[(start + 10)..<(start + 10 + payload.count)]))
                records.append((start + 10)..<(start + 10 + payload.count))
            }
            offset += size
        }
        return JournalFormat.Reading(records: records, end: reader.finish())
    }

    /// Three records; then each cut short anywhere, each byte of the middle one flipped,
    /// zeros after the end and a partial header; in pieces of 1 to 40 bytes and whole.
    @Test func piecesOfAnySizeReadAsTheWholeFile() throws {
        var journal = JournalFormat.header
        for payload in [Array("first".utf8), Array(repeating: 0xC7, count: 300), [0x4A]] {
            JournalFormat.append(payload, to: &journal)
        }
        var files: [[UInt8]] = [journal, journal + [UInt8](repeating: 0, count: 100), Array("chat-jour".utf8), []]
        files += (0..<journal.count).map { Array(journal[..<$0]) }
        files += (JournalFormat.header.count..<journal.count).map { index in
            var damaged = journal
            damaged[index] ^= 0x10
            return damaged
        }
        for (number, file) in files.enumerated() {
            let whole = try JournalFormat.read(file)
            for size in [1, 2, 3, 7, 10, 11, 40, file.count + 1] {
                #expect(try readInPieces(file, size: size) == whole, "file \(number), pieces of \(size)")
            }
        }
    }

    @Test func aFileThatIsNotAJournalOrOfANewerFormatIsRefusedInPiecesToo() throws {
        #expect(throws: JournalFormat.HeaderError.newerFormat(2)) {
            try readInPieces(Array("chat-journal/2\n".utf8), size: 3)
        }
        #expect(throws: JournalFormat.HeaderError.notAJournal) { try readInPieces(Array("hello\n".utf8), size: 1) }
    }
}

/// A snapshot's file: read back whole, refused when damaged or newer.
@Suite struct SnapshotFileFormatTests {
    @Test func aSnapshotFileReadsBackAndAnyDamageIsRefused() throws {
        let contents = Array("chat-snapshot/3 5-0 9\n{}".utf8)
        let file = SnapshotFileFormat.file(contents)
        #expect(file.starts(with: Array("chat-snapshot-file/1\n".utf8)))
        #expect(Array(try SnapshotFileFormat.contents(of: file)) == contents)
        for index in SnapshotFileFormat.header.count..<file.count {
            var damaged = file
            damaged[index] ^= 0x04
            #expect(throws: SnapshotFileFormat.ReadError.damaged, "byte \(index)") {
                try SnapshotFileFormat.contents(of: damaged)
            }
        }
        for cut in 0..<file.count {
            #expect(throws: (any Error).self, "cut at \(cut)") {
                try SnapshotFileFormat.contents(of: Array(file[..<cut]))
            }
        }
        #expect(throws: SnapshotFileFormat.ReadError.damaged) { try SnapshotFileFormat.contents(of: file + [0]) }
        #expect(throws: SnapshotFileFormat.ReadError.newerFormat(2)) {
            try SnapshotFileFormat.contents(of: Array("chat-snapshot-file/2\n".utf8) + file.dropFirst(21))
        }
        #expect(throws: SnapshotFileFormat.ReadError.notASnapshot) {
            try SnapshotFileFormat.contents(of: Array("chat-journal/1\n".utf8))
        }
    }
}
