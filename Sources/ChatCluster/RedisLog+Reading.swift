import ChatHub
import Logging
import NIOConcurrencyHelpers
import NIOCore
import RedisClient

/// The log reader: reads the stream on the reader connection's event loop, in batches,
/// reconnecting when the connection fails, and only ever in the epoch of the node's state.
extension RedisLog {
    /// Reads the log until the node stops, reconnecting when the connection fails. A
    /// connection reads only in the epoch of the node's state: when the log in Redis is
    /// another (Redis lost its data), it waits until the writer has started the node on the
    /// fresh log, then reads that from its start.
    func readEntries() async {
        var backoff = Self.backoff()
        var epoch = machine.withLockedValue { $0.epoch }
        var batch = ReadBatch()
        if let joined = machine.withLockedValue({ $0.reader }) {
            _ = batch.connected(toRun: await runID(of: joined))
        }
        while !isStopping {
            let reader: RedisConnection
            if let current = machine.withLockedValue({ $0.reader }), epoch != nil {
                reader = current
            } else {
                guard
                    let connected = await connectRetrying(
                        role: "reader", commandTimeout: Self.readBlock + .seconds(5), backoff: &backoff)
                else { return }
                let found = try? await connected.send(RESPCommand(["GET", ClusterKeys.epoch])).string
                let (known, writer) = machine.withLockedValue { ($0.epoch, $0.writer) }
                guard let found, found == known else {
                    await connected.close()
                    // The writer settles it: it starts the node on the fresh log.
                    if known != nil, let writer { await writer.close() }
                    // Waits for the writer's task, which has no signal to wait on here.
                    guard (try? await Task.sleep(for: .milliseconds(100))) != nil else { return }
                    continue
                }
                // Behind the trimmed log (cut off for longer than the log keeps): what was
                // missed cannot be read any more, so the node starts again from the snapshot.
                let info = try? await StreamInfo(connected.send(RESPCommand(["XINFO", "STREAM", ClusterKeys.log])))
                // Judged against the state of that epoch only: had the writer begun a fresh
                // log meanwhile, this node's progress (reset for it) against the old log's
                // trimming would look like a gap, and its users would be closed for nothing.
                let (current, applied, position) = machine.withLockedValue { ($0.epoch, $0.lastApplied, $0.position) }
                guard current == found else {
                    await connected.close()
                    continue
                }
                if let info, info.missedEntries(applied: applied, position: position) {
                    do {
                        try await startAgainFromSnapshot(connected, trimmed: info.trimmedCount)
                    } catch {
                        logger.error("The snapshot could not be loaded; trying again", metadata: ["error": "\(error)"])
                        await connected.close()
                        guard (try? await Task.sleep(for: .seconds(1))) != nil else { return }
                        continue
                    }
                }
                epoch = found
                reader = connected
                if batch.connected(toRun: await runID(of: connected)) {
                    logger.warning(
                        "Redis closed the reader, most likely for a reply over its output buffer limit; reading on in smaller batches",
                        metadata: ["next_batch": "\(batch.count)"])
                }
                guard machine.withLockedValue({ $0.readerConnected(connected) }) else { return await connected.close() }
                await replicationRestarted(on: connected)
                clusterMetrics?.reconnected(.reader)
                logger.notice("Reading the hub log again", metadata: ["after": "\(progress.applied)"])
            }
            do {
                guard let epoch else { throw EpochChanged() }
                while !isStopping {
                    let pause = try await readOnLoop(reader, epoch: epoch, batch: batch).get()
                    batch = pause.batch
                    switch pause.reason {
                    case .stopping:
                        return
                    case .failed(let error):
                        throw error
                    case .awaitingReplicas(let entries, let after):
                        try await waitForReplicas(reader)
                        if machine.withLockedValue({ $0.needsTrimCheck() }),
                            try await startedAgainAfterTrimCheck(reader, after: after, epoch: epoch)
                        {
                            continue
                        }
                        guard apply(entries, epoch: epoch) else { throw EpochChanged() }
                        settleInDoubtAppends()
                    case .mustCheckTrim(let entries, let after):
                        if try await startedAgainAfterTrimCheck(reader, after: after, epoch: epoch) { continue }
                        // (The read was counted in the batch size when it came in.)
                        guard apply(entries, epoch: epoch) else { throw EpochChanged() }
                        settleInDoubtAppends()
                    }
                }
            } catch {
                guard !isStopping else { return }
                if error is EpochChanged {
                    logger.notice("The hub log this node read is gone; reading the fresh one")
                } else {
                    // Perhaps Redis closed it for a reply over its output buffer limit: told
                    // apart from a restart once the reader is back.
                    batch.readerFailed()
                    logger.warning("Reading the hub log failed; reconnecting", metadata: ["reason": "\(error)"])
                }
                machine.withLockedValue { $0.readerLost() }
                epoch = nil
                await reader.close()
            }
        }
    }

    /// Whether entries after `after` were trimmed before this node read them; if so the
    /// node starts again from the snapshot (and the entries read are void).
    ///
    /// Checked when the answer is in, not when the read was sent: a read sent into a
    /// partition runs only after it, perhaps after a trim. Trimming only grows, so a check
    /// after the read misses no gap (it may see one that came after the read: then the node
    /// starts again needlessly, which only happens to a node whose heartbeat lapsed).
    private func startedAgainAfterTrimCheck(
        _ reader: RedisConnection, after: StreamID, epoch: String
    ) async throws -> Bool {
        let answer = try await reader.send(RESPCommand(["XINFO", "STREAM", ClusterKeys.log]))
        let (current, position) = machine.withLockedValue { ($0.epoch, $0.position) }
        // A fresh log begun meanwhile: the entries are void, and so is the check.
        guard current == epoch else { throw EpochChanged() }
        if let info = StreamInfo(answer), info.missedEntries(applied: after, position: position) {
            try await startAgainFromSnapshot(reader, trimmed: info.trimmedCount)
            return true
        }
        machine.withLockedValue { $0.trimChecked() }
        return false
    }

    /// The `run_id` of the Redis process behind a connection (`nil` when it cannot say).
    private func runID(of connection: RedisConnection) async -> String? {
        (try? await connection.send(RESPCommand(["INFO", "server"])))?.string.flatMap(ReadBatch.runID(inInfo:))
    }

    /// Why reading on the reader's event loop paused, and the batch size to go on with.
    struct ReadPause: Sendable {
        enum Reason: Sendable {
            case stopping
            case failed(any Error)
            /// The entries were read while this node's heartbeat key may have expired: the
            /// log may have been trimmed past them, which needs a look before they apply.
            case mustCheckTrim([StreamEntry], after: StreamID)
            /// The entries have not reached the replicas within the replication timeout.
            case awaitingReplicas([StreamEntry], after: StreamID)
        }

        var reason: Reason
        var batch: ReadBatch
    }

    /// The reader read in an epoch that is not the node's any more.
    struct EpochChanged: Error {}

    /// Reads and applies the log, batch after batch, on the reader connection's event loop:
    /// a reply is applied where it is parsed. A read awaited in a task cost two hand-overs
    /// between threads per batch (the reply to the task's thread, the next read back to the
    /// loop): 1 703 futex calls in 4 s of a busy node, against 58 now (BENCHMARKS.md). The
    /// task takes over again only for what needs more than one command: a trim check, an
    /// error, the node stopping.
    private func readOnLoop(_ reader: RedisConnection, epoch: String, batch: ReadBatch) -> EventLoopFuture<ReadPause> {
        let paused = reader.eventLoop.makePromise(of: ReadPause.self)
        readNext(reader, epoch: epoch, batch: batch, paused: paused)
        return paused.futureResult
    }

    /// One read; its answer, applied, sends the next.
    ///
    /// Redis answers a blocked `XREAD` right after the first `XADD` that reaches it, even
    /// when more `XADD`s of the same write wait behind it: a node's appends of one loop tick
    /// leave in one write, so a blocked read came back with one entry and the rest came with
    /// the next read. Each such lone line cost a drain, and a write to every member, of its
    /// own (about a third of a cluster node's drains under load). So an answer to a blocked
    /// read is held, and a read that does not block fetches what came with it; both apply
    /// together. While entries keep coming, reads do not block; the first that finds nothing
    /// is followed by one that does.
    /// - Parameters:
    ///   - held: entries read but not applied yet (the answer to a blocked read).
    ///   - blocking: whether this read waits for new entries (`BLOCK`).
    private func readNext(
        _ reader: RedisConnection, epoch: String, batch: ReadBatch, paused: EventLoopPromise<ReadPause>,
        held: [StreamEntry] = [], blocking: Bool = true
    ) {
        let (applied, isStopping) = machine.withLockedValue { ($0.lastApplied, $0.isStopping) }
        guard !isStopping else { return paused.succeed(ReadPause(reason: .stopping, batch: batch)) }
        var arguments = ["XREAD", "COUNT", "\(batch.count)"]
        if blocking { arguments += ["BLOCK", "\(Self.readBlock.milliseconds)"] }
        arguments += ["STREAMS", ClusterKeys.log, "\(held.last?.id ?? applied)"]
        // The fence goes out with the read when the read is sure to bring entries (those held
        // from the blocked read): a read that may find nothing would cost the replicas a write
        // and the reader a round trip to them for nothing. One that finds entries anyway is
        // fenced after its answer.
        let fence = held.isEmpty ? ReplicationFence.none : replicationFence()
        let sent = ContinuousClock.now
        let answers = reader.sendWithoutWaiting([RESPCommand(arguments)] + fence.commands)
        EventLoopFuture.whenAllComplete(answers, on: reader.eventLoop).whenSuccess { results in
            var batch = batch
            let found: [StreamEntry]
            do {
                found = try StreamEntry.entries(ofXREAD: results[0].get())
            } catch {
                return paused.succeed(ReadPause(reason: .failed(error), batch: batch))
            }
            if blocking && !found.isEmpty {
                // Not counted in the batch size yet: a full read would double the next one,
                // whose reply Redis may refuse, and these would be lost with it on every try.
                return self.readNext(reader, epoch: epoch, batch: batch, paused: paused, held: found, blocking: false)
            }
            batch.succeeded(entries: found.count)
            let read = Read(
                entries: held + found, foundNew: !found.isEmpty, after: applied, epoch: epoch, batch: batch, sent: sent)
            guard !fence.commands.isEmpty || read.entries.isEmpty || self.replicasToWait == 0 else {
                let late = self.replicationFence()
                let answers = reader.sendWithoutWaiting(late.commands)
                return EventLoopFuture.whenAllComplete(answers, on: reader.eventLoop).whenSuccess { results in
                    self.applyFenced(read, reader, paused: paused, fenceAnswer: results.last, replicas: late.replicas)
                }
            }
            self.applyFenced(
                read, reader, paused: paused, fenceAnswer: fence.commands.isEmpty ? nil : results.last,
                replicas: fence.replicas)
        }
    }

    /// What one read brought, on its way to being applied.
    struct Read {
        /// The entries held from a blocked read, then those this read found.
        var entries: [StreamEntry]
        /// Whether this read found any (else the next one waits for new entries).
        var foundNew: Bool
        /// The last entry applied when the read was sent.
        var after: StreamID
        var epoch: String
        var batch: ReadBatch
        var sent: ContinuousClock.Instant
    }

    /// Applies a read once its fence's answer says the replicas have it (without a fence,
    /// at once), then sends the next read: a read that found entries is followed by one that
    /// does not wait, one that found none by one that does.
    private func applyFenced(
        _ read: Read, _ reader: RedisConnection, paused: EventLoopPromise<ReadPause>,
        fenceAnswer: Result<RESPValue, any Error>?, replicas: Int
    ) {
        let (entries, batch) = (read.entries, read.batch)
        do {
            if !entries.isEmpty, let fenceAnswer {
                guard replicated(fenceAnswer, wanted: replicas) else {
                    if case .failure(let error) = fenceAnswer { throw error }
                    return paused.succeed(
                        ReadPause(reason: .awaitingReplicas(entries, after: read.after), batch: batch))
                }
                clusterMetrics?.replicationWaited(ContinuousClock.now - read.sent)
            }
            if !entries.isEmpty, machine.withLockedValue({ $0.needsTrimCheck() }) {
                return paused.succeed(ReadPause(reason: .mustCheckTrim(entries, after: read.after), batch: batch))
            }
            guard apply(entries, epoch: read.epoch) else { throw EpochChanged() }
            settleInDoubtAppends()
        } catch {
            return paused.succeed(ReadPause(reason: .failed(error), batch: batch))
        }
        guard read.foundNew else {
            // Nothing new: wait for it.
            return readNext(reader, epoch: read.epoch, batch: batch, paused: paused)
        }
        // Queued behind the drain the batch scheduled on this loop: the next read goes out
        // once this loop's members have been written to, so what arrives meanwhile comes as
        // one batch, and a loop that falls behind reads more slowly instead of letting its
        // shard's queue grow.
        reader.eventLoop.execute {
            self.readNext(reader, epoch: read.epoch, batch: batch, paused: paused, blocking: false)
        }
    }
}
