import RedisClient
import Testing

@testable import ChatCluster
@testable import ChatHub

/// Entries read back from the stream, whichever protocol version Redis answered in.
@Suite struct StreamEntryTests {
    @Test func streamRepliesInBothProtocolVersions() throws {
        let entry = RESPValue.array([.bulk("1700000000000-3"), .array([.bulk("c"), .bulk("x")])])
        let resp3 = RESPValue.map([.init(.bulk("{chat}:log"), .array([entry]))])
        let resp2 = RESPValue.array([.array([.bulk("{chat}:log"), .array([entry])])])
        for reply in [resp3, resp2] {
            let entries = try StreamEntry.entries(ofXREAD: reply)
            #expect(entries.map(\.id) == [StreamID(milliseconds: 1_700_000_000_000, sequence: 3)])
            #expect(entries.first?.fields["c"] == Array("x".utf8))
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
