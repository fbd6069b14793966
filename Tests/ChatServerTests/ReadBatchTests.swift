import Testing

@testable import ChatServer

/// The size of a node's reads of the hub log follows what Redis lets through.
@Suite struct ReadBatchTests {
    @Test func aFailedReadHalvesTheNextAndFullReadsDoubleItAgain() {
        var batch = ReadBatch()
        #expect(batch.count == 1000)
        batch.failed()
        batch.failed()
        #expect(batch.count == 250)
        for _ in 0..<10 { batch.failed() }
        #expect(batch.count == ReadBatch.minimum)
        // A read that was not full says nothing about a larger one.
        batch.succeeded(entries: 3)
        #expect(batch.count == ReadBatch.minimum)
        for _ in 0..<10 { batch.succeeded(entries: batch.count) }
        #expect(batch.count == ReadBatch.maximum)
    }
}
