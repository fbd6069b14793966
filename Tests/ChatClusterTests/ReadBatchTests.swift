import Testing

@testable import ChatCluster

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

    /// Only a read Redis itself closed halves the batch: an ordinary restart does not.
    @Test func aReadFailedAgainstTheSameRedisHalvesARestartDoesNot() {
        var batch = ReadBatch()
        var halved = batch.connected(toRun: "a")
        #expect(!halved)
        // Redis restarted (another run id): the batch stays.
        batch.readerFailed()
        halved = batch.connected(toRun: "b")
        #expect(!halved)
        #expect(batch.count == 1000)
        // The same Redis closed the reader: halved, once per failure.
        batch.readerFailed()
        halved = batch.connected(toRun: "b")
        #expect(halved)
        #expect(batch.count == 500)
        halved = batch.connected(toRun: "b")
        #expect(!halved, "a reconnect without a failure changes nothing")
        // A run id Redis did not give is not taken for the same one.
        batch.readerFailed()
        halved = batch.connected(toRun: nil)
        #expect(!halved)
        #expect(batch.count == 500)
    }

    @Test func theRunIDIsReadFromINFOServer() {
        let info = "# Server\r\nredis_version:7.0.15\r\nrun_id:4f2a9c\r\ntcp_port:6379\r\n"
        #expect(ReadBatch.runID(inInfo: info) == "4f2a9c")
        #expect(ReadBatch.runID(inInfo: "# Server\r\n") == nil)
    }
}
