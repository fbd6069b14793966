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
            entries: [StreamEntry(id: id(milliseconds), fields: ["c": Array("\(milliseconds)".utf8)])])
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
            previous: Self.id(1), entries: [2, 3, 4].map { StreamEntry(id: Self.id($0), fields: [:]) })
        let outcome14 = chain.pushed(batch)
        #expect(outcome14)
        let outcome15 = chain.pushed(batch)
        #expect(!outcome15)
        let outcome16 = chain.takeWork()
        #expect(outcome16.entries.map(\.id) == [2, 3, 4].map(Self.id))
        #expect(chain.tail == Self.id(4))
    }

    /// MessagePack as `cmsgpack.pack` writes it: strings, arrays, a map for an error.
    private static func pack(_ text: [UInt8]) -> [UInt8] {
        text.count < 32 ? [0xa0 | UInt8(text.count)] + text : [0xd9, UInt8(text.count)] + text
    }
    private static func pack(_ text: String) -> [UInt8] { pack(Array(text.utf8)) }
    private static func pack(array elements: [[UInt8]]) -> [UInt8] {
        [0x90 | UInt8(elements.count)] + elements.flatMap { $0 }
    }

    @Test func theScriptsMessageReadsBackBinarySafely() throws {
        let command: [UInt8] = [0, 10, 58, 255, 13, 10] + Array(repeating: 0x78, count: 40)
        let error = [0x81] + Self.pack("err") + Self.pack("OOM")
        let payload =
            Self.pack("1-0") + Self.pack(array: [Self.pack("2-5"), error, Self.pack("2-6")])
            + Self.pack(array: [
                Self.pack(ClusterKeys.appended), Self.pack("4"), Self.pack("c"), Self.pack(command), Self.pack("i"),
                Self.pack("1:7"), Self.pack("2"), Self.pack("c"), Self.pack("refused"), Self.pack("2"), Self.pack("b"),
                Self.pack("3"),
            ])
        let pushed = try #require(PublishedAppend.pushed(payload: payload))
        #expect(pushed.previous == StreamID(milliseconds: 1, sequence: 0))
        // The refused entry is not in the log, and not in the push.
        #expect(
            pushed.entries.map(\.id) == [
                StreamID(milliseconds: 2, sequence: 5), StreamID(milliseconds: 2, sequence: 6),
            ])
        #expect(pushed.entries.first?.fields == ["c": command, "i": Array("1:7".utf8)])
        #expect(pushed.entries.last?.fields == ["b": Array("3".utf8)])
        let frame = RESPValue.push([.bulk("message"), .bulk(ClusterKeys.appended), .bulkString(payload)])
        #expect(PublishedAppend.pushed(in: frame) == pushed)
        #expect(
            PublishedAppend.pushed(in: .push([.bulk("subscribe"), .bulk(ClusterKeys.appended), .integer(1)])) == nil)
        let channel = Self.pack(ClusterKeys.appended)
        let broken: [[UInt8]] = [
            Self.pack("1-0"),
            Self.pack("1-0") + Self.pack(array: [Self.pack("2-5")]) + Self.pack(array: [channel, Self.pack("3")]),
            Self.pack("1-0") + Self.pack(array: [Self.pack("2-5")])
                + Self.pack(array: [channel, Self.pack("1"), Self.pack("c")]),
            Self.pack("1-0") + Self.pack(array: [Self.pack("2-5")])
                + Self.pack(array: [channel, Self.pack("2"), Self.pack("c")]),
            Self.pack("x") + Self.pack(array: [Self.pack("2-5")]) + Self.pack(array: [channel, Self.pack("0")]),
            Self.pack("1-0") + Self.pack(array: [Self.pack("2-5")])
                + Self.pack(array: [channel, Self.pack("0"), Self.pack("0")]),
            Self.pack("1-0") + Self.pack(array: [error]) + Self.pack(array: [channel, Self.pack("0")]),
            Self.pack("1-0") + [0x9f], [0xd9, 40] + Array("1-0".utf8), [0xdd, 0xff, 0xff, 0xff, 0xff],
        ]
        for payload in broken {
            #expect(PublishedAppend.pushed(payload: payload) == nil, "\(payload)")
        }
        // An entry of no fields reads back as one.
        let empty =
            Self.pack("1-0") + Self.pack(array: [Self.pack("2-0")]) + Self.pack(array: [channel, Self.pack("0")])
        #expect(PublishedAppend.pushed(payload: empty)?.entries.first?.fields == [:])
    }

    @Test func eachAppendsOutcomeIsItsOwn() {
        let reply = RESPValue.array([.bulk("5-0"), .simpleError("OOM command not allowed"), .bulk("5-1")])
        let outcomes = PublishedAppend.outcomes(of: reply, entries: 3)
        #expect(outcomes?.count == 3)
        #expect((try? outcomes?[0].get()) == StreamID(milliseconds: 5, sequence: 0))
        #expect((try? outcomes?[1].get()) == nil)
        #expect(PublishedAppend.outcomes(of: reply, entries: 2) == nil)
        #expect(PublishedAppend.tookTheOne(.success(.array([.bulk("7-0")]))))
        #expect(!PublishedAppend.tookTheOne(.success(.array([.simpleError("ERR")]))))
        #expect(!PublishedAppend.tookTheOne(.failure(.connectionClosed)))
    }
}
