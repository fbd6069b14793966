import RedisClient
import Testing

@testable import ChatCluster
@testable import ChatHub

/// Entries pushed by Redis are taken only in the log's order: each must follow the last one
/// the node has; anything else makes the node read the stream.
@Suite struct EntryChainTests {
    private static func id(_ milliseconds: Int64) -> StreamID { StreamID(milliseconds: milliseconds, sequence: 0) }

    private static func push(_ milliseconds: Int64, after previous: Int64) -> PublishedAppend.Pushed {
        PublishedAppend.Pushed(
            previous: id(previous),
            entries: [StreamEntry(id: id(milliseconds), records: [LogRecord(command: Array("\(milliseconds)".utf8))])])
    }

    @Test func pushesThatFollowAreTakenInOrderAndDuplicatesDropped() {
        var chain = EntryChain()
        chain.readEnded(at: Self.id(10))
        let outcome1 = chain.pushed(Self.push(11, after: 10))
        #expect(outcome1)
        // Work was waiting already: no second wake-up.
        let outcome2 = chain.pushed(Self.push(12, after: 11))
        #expect(!outcome2)
        let outcome3 = chain.pushed(Self.push(12, after: 11))
        #expect(!outcome3)
        let outcome4 = chain.pushed(Self.push(9, after: 8))
        #expect(!outcome4)
        let work = chain.takeWork()
        #expect(work.entries.map(\.id) == [Self.id(11), Self.id(12)])
        #expect(!work.mustRead)
        #expect(!chain.hasWork)
        let outcome5 = chain.takeWork()
        #expect(outcome5.entries.isEmpty)
    }

    @Test func aPushThatDoesNotFollowIsAGapReadPastThenTheKeptPushesGoOn() {
        var chain = EntryChain()
        chain.readEnded(at: Self.id(10))
        _ = chain.pushed(Self.push(11, after: 10))
        // 12 was missed (or appended without a push).
        _ = chain.pushed(Self.push(13, after: 12))
        _ = chain.pushed(Self.push(14, after: 13))
        let work = chain.takeWork()
        #expect(work.entries.map(\.id) == [Self.id(11)])
        #expect(work.mustRead)
        #expect(chain.tail == nil)
        // The read brought 12 and 13: 14 follows and is taken; 13 is dropped.
        chain.readEnded(at: Self.id(13))
        #expect(chain.tail == Self.id(14))
        let after = chain.takeWork()
        #expect(after.entries.map(\.id) == [Self.id(14)])
        #expect(!after.mustRead)
    }

    @Test func pushesDuringAReadAreSortedOnceItEnds() {
        var chain = EntryChain()
        // Connecting: the stream is read; pushes meanwhile wake nobody.
        let outcome6 = chain.pushed(Self.push(5, after: 4))
        #expect(!outcome6)
        let outcome7 = chain.pushed(Self.push(6, after: 5))
        #expect(!outcome7)
        #expect(!chain.hasWork)
        chain.readEnded(at: Self.id(5))
        let outcome8 = chain.takeWork()
        #expect(outcome8.entries.map(\.id) == [Self.id(6)])
        // A read that ended before the kept pushes begin: a gap again.
        chain.readAgain()
        _ = chain.pushed(Self.push(9, after: 8))
        chain.readEnded(at: Self.id(6))
        let outcome9 = chain.takeWork()
        #expect(outcome9.mustRead)
    }

    @Test func silenceMakesItReadTheStreamAndReadingAgainDropsWhatWasTaken() {
        var chain = EntryChain()
        chain.readEnded(at: Self.id(1))
        chain.checkStream()
        let outcome10 = chain.takeWork()
        #expect(outcome10.mustRead)
        chain.readEnded(at: Self.id(1))
        _ = chain.pushed(Self.push(2, after: 1))
        chain.readAgain()
        let outcome11 = chain.takeWork()
        #expect(outcome11.entries.isEmpty)
    }

    @Test func pushesPastTheLimitWhileReadingAreDroppedAndTheNextReadCatchesUp() {
        var chain = EntryChain()
        for number in 1...Int64(EntryChain.keptLimit + 1) { _ = chain.pushed(Self.push(number, after: number - 1)) }
        chain.readEnded(at: Self.id(3))
        let outcome12 = chain.takeWork()
        #expect(outcome12.entries.isEmpty)
        // The next push does not follow 3: the stream is read from there.
        _ = chain.pushed(Self.push(Int64(EntryChain.keptLimit + 2), after: Int64(EntryChain.keptLimit + 1)))
        let outcome13 = chain.takeWork()
        #expect(outcome13.mustRead)
    }

    @Test func aPushOfSeveralEntriesIsTakenWholeOrNotAtAll() {
        var chain = EntryChain()
        chain.readEnded(at: Self.id(1))
        let batch = PublishedAppend.Pushed(
            previous: Self.id(1), entries: [2, 3, 4].map { StreamEntry(id: Self.id($0), records: []) })
        let outcome14 = chain.pushed(batch)
        #expect(outcome14)
        let outcome15 = chain.pushed(batch)
        #expect(!outcome15)
        let outcome16 = chain.takeWork()
        #expect(outcome16.entries.map(\.id) == [2, 3, 4].map(Self.id))
        #expect(chain.tail == Self.id(4))
    }

    /// MessagePack as `cmsgpack.pack` writes it: strings.
    private static func pack(_ text: [UInt8]) -> [UInt8] {
        text.count < 32 ? [0xa0 | UInt8(text.count)] + text : [0xd9, UInt8(text.count)] + text
    }
    private static func pack(_ text: String) -> [UInt8] { pack(Array(text.utf8)) }

    @Test func theScriptsMessageReadsBackBinarySafely() throws {
        let command: [UInt8] = [0, 10, 58, 255, 13, 10] + Array(repeating: 0x78, count: 300)
        let batch = LogRecord.batch([
            [("c", command), ("i", Array("1:7".utf8))], [("b", Array("3".utf8))], [("later", [1]), ("c", [2])],
        ])
        // What the script publishes: the ids packed by Redis, then the batch as the node sent it.
        let payload = Self.pack("1-0") + Self.pack("2-5") + batch
        let pushed = try #require(PublishedAppend.pushed(payload: payload))
        #expect(pushed.previous == StreamID(milliseconds: 1, sequence: 0))
        #expect(pushed.entries.map(\.id) == [StreamID(milliseconds: 2, sequence: 5)])
        // A field this version does not know is passed over.
        #expect(
            pushed.entries.first?.records == [
                LogRecord(command: command, tag: Array("1:7".utf8)), LogRecord(beat: Array("3".utf8)),
                LogRecord(command: [2]),
            ])
        let frame = RESPValue.push([.bulk("message"), .bulk(ClusterKeys.appended), .bulkString(payload)])
        #expect(PublishedAppend.pushed(in: frame) == pushed)
        #expect(
            PublishedAppend.pushed(in: .push([.bulk("subscribe"), .bulk(ClusterKeys.appended), .integer(1)])) == nil)
        let ids = Self.pack("1-0") + Self.pack("2-5")
        let broken: [[UInt8]] = [
            Self.pack("1-0"), ids, ids + batch.dropLast(), ids + batch + [0x90],
            Self.pack("x") + Self.pack("2-5") + batch,
            Self.pack("2-5") + Self.pack("1-0") + batch, Self.pack("1-0") + [0x90] + batch,
            // A record of an odd count of strings; a record that is not an array.
            ids + [0x91, 0x91, 0xa1, 0x63], ids + [0x91, 0xa1, 0x63], ids + [0xdd, 0xff, 0xff, 0xff, 0xff],
        ]
        for payload in broken {
            #expect(PublishedAppend.pushed(payload: payload) == nil, "\(payload)")
        }
        // An entry of no records reads back as one.
        #expect(PublishedAppend.pushed(payload: ids + LogRecord.batch([]))?.entries.first?.records == [])
    }

    @Test func aCallsRecordsShareTheirEntrysOutcome() {
        let outcomes = PublishedAppend.outcomes(of: .bulk("5-0"), records: 3)
        #expect(outcomes?.count == 3)
        #expect(outcomes?.allSatisfy { (try? $0.get()) == StreamID(milliseconds: 5, sequence: 0) } == true)
        #expect(PublishedAppend.outcomes(of: .array([.bulk("5-0")]), records: 1) == nil)
        #expect(PublishedAppend.tookTheOne(.success(.bulk("7-0"))))
        #expect(!PublishedAppend.tookTheOne(.success(.integer(7))))
        #expect(!PublishedAppend.tookTheOne(.failure(.server("OOM command not allowed"))))
        #expect(!PublishedAppend.tookTheOne(.failure(.connectionClosed)))
    }
}
