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
                        role: "reader", commandTimeout: Self.pushSilence + .seconds(5), backoff: &backoff)
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
                let follower = try await subscribe(alongside: reader)
                while !isStopping {
                    let pause = try await readOnLoop(reader, epoch: epoch, batch: batch, follower: follower).get()
                    batch = pause.batch
                    switch pause.reason {
                    case .stopping:
                        return
                    case .failed(let error):
                        throw error
                    case .awaitingReplicas(let entries, let after, let waitedFor):
                        try await waitForReplicas(reader, waitedFor: waitedFor)
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
                    if !(error is PushesStopped) { batch.readerFailed() }
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
            /// The entries have not reached the replicas (this many) within the replication
            /// timeout.
            case awaitingReplicas([StreamEntry], after: StreamID, waitedFor: Int)
        }

        var reason: Reason
        var batch: ReadBatch
    }

    /// The reader read in an epoch that is not the node's any more.
    struct EpochChanged: Error {}

    /// Nothing was pushed for ``RedisLog/pushSilence``, yet the stream had new entries.
    struct PushesStopped: Error, CustomStringConvertible {
        var description: String { "Redis stopped pushing the entries appended to the hub log" }
    }

    /// Reads and applies the log, batch after batch, on the reader connection's event loop:
    /// the stream is read first (from the last entry applied), then entries are taken as
    /// Redis pushes them (``PublishedAppend``, ``EntryChain``), and the stream is read again
    /// only after a gap. A batch is applied where it arrives: a read awaited in a task cost
    /// two hand-overs between threads per batch (the reply to the task's thread, the next
    /// read back to the loop): 1 703 futex calls in 4 s of a busy node, against 58 on the
    /// loop (BENCHMARKS.md). The task takes over again only for what needs more than one
    /// command: a trim check, an error, the node stopping.
    private func readOnLoop(
        _ reader: RedisConnection, epoch: String, batch: ReadBatch, follower: Follower
    ) -> EventLoopFuture<ReadPause> {
        let paused = reader.eventLoop.makePromise(of: ReadPause.self)
        reader.eventLoop.execute {
            follower.state.value.chain.readAgain()
            self.readStream(reader, epoch: epoch, batch: batch, paused: paused, follower: follower)
        }
        return paused.futureResult
    }

    /// One read of the stream after the last entry applied, without waiting for new ones;
    /// once it is applied, another if it was full, else pushes are taken from where it ended.
    private func readStream(
        _ reader: RedisConnection, epoch: String, batch: ReadBatch, paused: EventLoopPromise<ReadPause>,
        follower: Follower
    ) {
        let (applied, isStopping) = machine.withLockedValue { ($0.lastApplied, $0.isStopping) }
        guard !isStopping else { return paused.succeed(ReadPause(reason: .stopping, batch: batch)) }
        let asked = batch.count
        let sent = ContinuousClock.now
        reader.sendWithoutWaiting(
            RESPCommand(["XREAD", "COUNT", "\(asked)", "STREAMS", ClusterKeys.log, "\(applied)"])
        )
        .whenComplete { result in
            var batch = batch
            let found: [StreamEntry]
            do {
                found = try StreamEntry.entries(ofXREAD: result.get())
            } catch {
                return paused.succeed(ReadPause(reason: .failed(error), batch: batch))
            }
            batch.succeeded(entries: found.count)
            // Read because nothing was pushed for a while, and there was something to read:
            // the subscription no longer brings what is appended.
            let pushesStopped = follower.state.value.readingAfterSilence && !found.isEmpty
            follower.state.value.readingAfterSilence = false
            let read = Read(entries: found, after: applied, epoch: epoch, batch: batch, sent: sent)
            self.applyFenced(read, reader, paused: paused) {
                guard !pushesStopped else {
                    return paused.succeed(ReadPause(reason: .failed(PushesStopped()), batch: batch))
                }
                guard found.count < asked else {
                    return self.readStream(reader, epoch: epoch, batch: batch, paused: paused, follower: follower)
                }
                follower.state.value.chain.readEnded(at: self.progress.applied)
                self.follow(reader, epoch: epoch, batch: batch, paused: paused, follower: follower)
            }
        }
    }

    /// Applies the entries pushed since the last batch; reads the stream after a gap; or,
    /// with nothing to do, waits for the next push.
    private func follow(
        _ reader: RedisConnection, epoch: String, batch: ReadBatch, paused: EventLoopPromise<ReadPause>,
        follower: Follower
    ) {
        guard !isStopping else { return paused.succeed(ReadPause(reason: .stopping, batch: batch)) }
        guard reader.isActive else {
            return paused.succeed(ReadPause(reason: .failed(RedisError.connectionClosed), batch: batch))
        }
        let (entries, mustRead) = follower.state.value.chain.takeWork()
        let next = {
            if mustRead {
                self.readStream(reader, epoch: epoch, batch: batch, paused: paused, follower: follower)
            } else {
                self.follow(reader, epoch: epoch, batch: batch, paused: paused, follower: follower)
            }
        }
        guard entries.isEmpty else {
            let read = Read(
                entries: entries, after: progress.applied, epoch: epoch, batch: batch, sent: ContinuousClock.now)
            return applyFenced(read, reader, paused: paused, then: next)
        }
        guard !mustRead else { return next() }
        follower.state.value.waiting = next
    }

    /// What one read, or one batch of pushes, brought, on its way to being applied.
    struct Read {
        var entries: [StreamEntry]
        /// The last entry applied when the entries came.
        var after: StreamID
        var epoch: String
        var batch: ReadBatch
        var sent: ContinuousClock.Instant
    }

    /// Applies entries once the replicas have them (behind a fence of this reader's, when
    /// entries wait for replicas; at once otherwise), then goes on with `then`, queued behind
    /// the drain the batch scheduled on this loop: what arrives meanwhile comes as one batch,
    /// and a loop that falls behind takes entries more slowly instead of letting its shard's
    /// queue grow.
    private func applyFenced(
        _ read: Read, _ reader: RedisConnection, paused: EventLoopPromise<ReadPause>,
        then: @escaping () -> Void
    ) {
        guard !read.entries.isEmpty else { return then() }
        let fence = replicationFence()
        guard fence.commands.isEmpty else {
            let answers = reader.sendWithoutWaiting(fence.commands)
            return EventLoopFuture.whenAllComplete(answers, on: reader.eventLoop).assumeIsolated().whenSuccess {
                results in
                self.applyRead(read, paused: paused, fenceAnswer: results.last, replicas: fence.replicas, then: then)
            }
        }
        applyRead(read, paused: paused, fenceAnswer: nil, replicas: 0, then: then)
    }

    private func applyRead(
        _ read: Read, paused: EventLoopPromise<ReadPause>, fenceAnswer: Result<RESPValue, any Error>?,
        replicas: Int, then: @escaping () -> Void
    ) {
        let (entries, batch) = (read.entries, read.batch)
        do {
            if let fenceAnswer {
                guard replicated(fenceAnswer, wanted: replicas) else {
                    if case .failure(let error) = fenceAnswer { throw error }
                    return paused.succeed(
                        ReadPause(
                            reason: .awaitingReplicas(entries, after: read.after, waitedFor: replicas), batch: batch))
                }
                clusterMetrics?.replicationWaited(ContinuousClock.now - read.sent)
            }
            if machine.withLockedValue({ $0.needsTrimCheck() }) {
                return paused.succeed(ReadPause(reason: .mustCheckTrim(entries, after: read.after), batch: batch))
            }
            guard apply(entries, epoch: read.epoch) else { throw EpochChanged() }
            settleInDoubtAppends()
        } catch {
            return paused.succeed(ReadPause(reason: .failed(error), batch: batch))
        }
        paused.futureResult.eventLoop.assumeIsolated().execute(then)
    }
}
