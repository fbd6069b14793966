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
}
