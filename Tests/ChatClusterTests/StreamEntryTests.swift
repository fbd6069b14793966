import RedisClient
import Testing

@testable import ChatCluster
@testable import ChatHub

/// Entries read back from the stream, whichever protocol version Redis answered in.
@Suite struct StreamEntryTests {
    /// An entry as `XRANGE` answers it, with these fields.
    private static func entry(_ fields: [(String, [UInt8])]) -> StreamEntry? {
        let reply = RESPValue.array([
            .array([.bulk("7-1"), .array(fields.flatMap { [RESPValue.bulk($0.0), .bulkString($0.1)] })])
        ])
        return try? StreamEntry.entries(ofRange: reply).first
    }

    @Test func anEntryHoldsTheRecordsOfOneCallAndAnOlderEntryIsOneRecord() {
        let batch = LogRecord.batch([
            [("c", [1, 2]), ("i", Array("2:9".utf8))], [("b", Array("2".utf8))],
            [("c", Array(repeating: 7, count: 70_000))],
        ])
        #expect(
            Self.entry([("r", batch)])?.records == [
                LogRecord(command: [1, 2], tag: Array("2:9".utf8)), LogRecord(beat: Array("2".utf8)),
                LogRecord(command: Array(repeating: 7, count: 70_000)),
            ])
        #expect(Self.entry([("r", batch)])?.id == StreamID(milliseconds: 7, sequence: 1))
        // Written before records: the entry's own fields are its one record.
        #expect(
            Self.entry([("c", [3]), ("i", Array("1:1".utf8))])?.records == [
                LogRecord(command: [3], tag: Array("1:1".utf8))
            ])
        #expect(Self.entry([("b", Array("4".utf8))])?.records == [LogRecord(beat: Array("4".utf8))])
        // Records that cannot be read are one record of nothing: skipped with an error when
        // applied, never misread; the entry still counts.
        for unreadable in [Array(batch.dropLast()), batch + [0], [0xc1], []] {
            #expect(Self.entry([("r", unreadable)])?.records == [LogRecord()], "\(unreadable)")
        }
        #expect(Self.entry([])?.records == [LogRecord()])
    }

    @Test func streamRepliesInBothProtocolVersions() throws {
        let entry = RESPValue.array([.bulk("1700000000000-3"), .array([.bulk("c"), .bulk("x")])])
        let resp3 = RESPValue.map([.init(.bulk("{chat}:log"), .array([entry]))])
        let resp2 = RESPValue.array([.array([.bulk("{chat}:log"), .array([entry])])])
        for reply in [resp3, resp2] {
            let entries = try StreamEntry.entries(ofXREAD: reply)
            #expect(entries.map(\.id) == [StreamID(milliseconds: 1_700_000_000_000, sequence: 3)])
            #expect(entries.first?.records == [LogRecord(command: Array("x".utf8))])
        }
        #expect(try StreamEntry.entries(ofXREAD: .null).isEmpty)
        #expect(StreamID("1-2")! < StreamID("1-10")!)
        #expect(StreamID("2-0")! > StreamID("1-99")!)
        #expect(StreamID("12") == nil)
    }

    @Test func idsAreReadFromTheirBytesAndAnythingElseIsRefused() {
        #expect(StreamID("1700000000000-3") == StreamID(milliseconds: 1_700_000_000_000, sequence: 3))
        #expect(StreamID("0-0") == .zero)
        #expect(StreamID("9223372036854775807-9223372036854775807")?.sequence == Int64.max)
        #expect(StreamID(RESPValue.bulk("5-6")) == StreamID(milliseconds: 5, sequence: 6))
        #expect(StreamID(RESPValue.simpleString("5-6")) == StreamID(milliseconds: 5, sequence: 6))
        #expect(StreamID(RESPValue.integer(5)) == nil)
        let refused = [
            "", "-", "1-", "-1", "1--2", "1-2-3", "+1-2", "1-+2", " 1-2", "1-2 ", "a-1", "1-b", "1.5-2",
            "9223372036854775808-0", "0-9223372036854775808", "99999999999999999999-1",
        ]
        for text in refused { #expect(StreamID(text) == nil, "\(text)") }
        // From bytes with and without contiguous storage, and from a slice in the middle.
        #expect(StreamID(utf8: Array("5-6".utf8)) == StreamID(milliseconds: 5, sequence: 6))
        #expect(StreamID(utf8: Array("x5-6y".utf8).dropFirst().dropLast()) == StreamID(milliseconds: 5, sequence: 6))
        #expect(StreamID(utf8: "5-6".utf8.lazy.map { $0 }) == StreamID(milliseconds: 5, sequence: 6))
        #expect(StreamID(utf8: "5-x".utf8.lazy.map { $0 }) == nil)
    }
}
