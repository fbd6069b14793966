import ChatCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import RedisClient

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The hub log of a cluster node: commands are appended to one Redis Stream
/// (``ClusterKeys/log``), every node reads the whole stream and applies each entry to its
/// own full ``HubReplica``, at the entry's time, and carries out the effects for its own
/// sessions. A node's own users' lines reach them when they come back from the stream,
/// so every member on every node sees a room's lines in the one order of the stream.
///
/// Two connections: the writer (appends, heartbeats) and the reader (`XREAD BLOCK`, which
/// holds its connection while it waits). Each reconnects with backoff and jitter; the
/// reader resumes after the last entry it applied, so nothing is skipped or applied twice.
final class RedisLog: NodeLog {
    let replica: HubReplica
    private let settings: ClusterSettings
    /// The settings every replica must decide with alike (see ``fingerprint(of:)``).
    private let fingerprint: String
    private let logger: Logger
    private let group: any EventLoopGroup
    private let tls: TLSConfiguration?
    private let clusterMetrics: ClusterMetrics?

    private struct Links {
        var writer: RedisConnection?
        var reader: RedisConnection?
        var isStopping = false
        /// Whether the loss of Redis was logged: once per outage, not once per command.
        var outageLogged = false
        /// The node's number once it joined (its appends carry it).
        var node: NodeNumber = 0
        /// What was appended and not yet read back.
        var ledger = AppendLedger()
        /// Releases that could not be appended: sent again once Redis is back (a release is
        /// idempotent), so no slot or name stays taken by a connection that is gone.
        var releasesToResend: [SessionID] = []
        /// Others' heartbeats are judged only after a full node timeout of this node's own
        /// connection to Redis: after an outage, they need that long to refresh theirs.
        var judgeNotBefore = ContinuousClock.now
        /// The epoch of the log this node's state was built from (``ClusterKeys/epoch``);
        /// `nil` while it starts a fresh log.
        var epoch: String?
        /// While this node starts a fresh log: the epoch that was lost, and this node's
        /// connections to announce there (taken once from the old state).
        var lostEpoch: String?
        var announcements: [Reannouncement]?
        /// Since when a heartbeat entry Redis has taken (it answered the append) has not
        /// come back to this node's reader; `nil` when every one has.
        var unreadBeatSince: ContinuousClock.Instant?
        /// When the last heartbeat refresh that succeeded was sent. While refreshes keep
        /// coming the log is not trimmed past what the node reported applied; once one is
        /// late, the key may have expired, and each read first checks that nothing it has
        /// not read was trimmed.
        var lastRefresh = ContinuousClock.now
        /// Set when a refresh succeeded long after the one before (it waited out a
        /// partition): the key may have expired in between. The reader checks once, then
        /// clears it.
        var mayHaveMissedEntries = false
    }

    private let links = NIOLockedValueBox(Links())
    /// The id of the last entry applied: where reading resumes.
    private let lastApplied = NIOLockedValueBox(StreamID.zero)
    /// How many entries the log had taken up to the last one applied (`nil` when a snapshot
    /// did not say): the lag in entries is Redis's count of entries added minus this.
    private let position = NIOLockedValueBox<Int64?>(0)
    /// Ends when ``stop()`` is called: ``run()`` waits on it. (A stream, not a promise: a
    /// node that never joined never stops, and a promise left pending must not be dropped.)
    private let stopped: AsyncStream<Void>
    private let endRun: AsyncStream<Void>.Continuation
    /// The state's limits (a loaded snapshot takes them).
    private let configuration: HubState.Configuration
    /// Held while a batch is applied, so a snapshot takes a state and the id of the last
    /// entry in it that belong together.
    private let applying = NIOLock()

    /// How long one `XREAD` waits for new entries before asking again.
    static let readBlock = Duration.seconds(2)

    /// Reconnecting: from 50 ms, at most a second apart. Attempts against a Redis that is down
    /// cost little, and every second of waiting is a second of refused commands.
    static func backoff() -> ReconnectBackoff {
        ReconnectBackoff(initial: .milliseconds(50), maximum: .seconds(1))
    }

    init(
        eventLoops: [any EventLoop], configuration: HubState.Configuration, settings: ClusterSettings,
        maxSendQueueBytes: Int, metrics: ChatMetrics?, clusterMetrics: ClusterMetrics? = nil, logger: Logger,
        group: any EventLoopGroup
    ) {
        self.clusterMetrics = clusterMetrics
        var configuration = configuration
        // Sessions of other nodes name their own shards: room membership counts every
        // node's shards, so the state has room for as many as any node may have.
        configuration.shardCount = 64
        self.replica = HubReplica(
            eventLoops: eventLoops, configuration: configuration, maxSendQueueBytes: maxSendQueueBytes,
            metrics: metrics)
        self.settings = settings
        self.fingerprint = Self.fingerprint(of: configuration)
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "node_id"] = "\(settings.nodeID)"
        self.logger = logger
        self.group = group
        if settings.redis.usesTLS {
            var tls = TLSConfiguration.makeClientConfiguration()
            if let caFile = settings.caFile { tls.additionalTrustRoots = [.file(caFile)] }
            self.tls = tls
        } else {
            self.tls = nil
        }
        (self.stopped, self.endRun) = AsyncStream<Void>.makeStream()
    }

    /// The settings that decide what the hub does, in one line: replicas that decided with
    /// different limits would drift apart, so a node whose settings differ from the
    /// cluster's is not let in.
    static func fingerprint(of configuration: HubState.Configuration) -> String {
        let limits = configuration.codeRequests
        return [
            "hub-log/1",
            "HISTORY_SIZE=\(configuration.historySize)",
            "MAX_CONNECTIONS_PER_IP=\(configuration.maxConnectionsPerIP)",
            "MAX_CONNECTIONS=\(configuration.maxConnections)",
            "CONNECTIONS_PER_IP_PER_MINUTE=\(configuration.connectionsPerIPPerMinute)",
            "OTP_REQUEST_INTERVAL=\(limits.interval)",
            "OTP_REQUESTS_PER_HOUR=\(limits.perAddressPerHour)",
            "OTP_REQUESTS_PER_IP_PER_HOUR=\(limits.perClientPerHour)",
            "OTP_REQUESTS_PER_MINUTE=\(limits.perMinute)",
            "PRESENCE_NOTICE_MAX_MEMBERS=\(configuration.presenceNoticeMaxMembers)",
        ].joined(separator: " ")
    }

    // MARK: HubLog

    func submit(_ command: HubCommand) {
        let sent = links.withLockedValue { links -> (RedisConnection, UInt64, NodeNumber)? in
            guard let writer = links.writer else { return nil }
            return (writer, links.ledger.record(command), links.node)
        }
        guard let (writer, sequence, node) = sent else {
            noteOutage(because: "no connection to Redis")
            return unavailable(command)
        }
        let append = RESPCommand(bytes: [
            Array("XADD".utf8), Array(ClusterKeys.log.utf8), [UInt8(ascii: "*")], Array(ClusterKeys.commandField.utf8),
            LogEntryCoding.encode(command), Array(ClusterKeys.tagField.utf8),
            Array(AppendLedger.entryTag(node: node, sequence: sequence).utf8),
        ])
        // No timer per append: the heartbeat's commands on the same connection time out
        // when Redis hangs, which closes it and fails every append still waiting.
        writer.sendWithoutWaiting(append, timeout: false).whenFailure { error in
            self.noteOutage(because: "\(error)")
            // An error reply: not in the stream. A lost connection: in doubt, settled by
            // the ledger once the writer is back.
            guard case RedisError.server = error,
                let rejected = self.links.withLockedValue({ $0.ledger.reject(sequence) })
            else { return }
            self.unavailable(rejected)
        }
    }

    /// Logs the loss of Redis, once per outage.
    private func noteOutage(because reason: String) {
        let first = links.withLockedValue { links in
            guard !links.isStopping, !links.outageLogged else { return false }
            links.outageLogged = true
            return true
        }
        if first {
            logger.error(
                "Cannot append to the cluster's hub log; commands are refused until Redis is back",
                metadata: ["reason": "\(reason)", "redis": "\(settings.redis)"])
        }
    }

    /// A command that is not in the log: its requester is told the chat is briefly
    /// unavailable; a release is kept and sent again once Redis is back.
    private func unavailable(_ command: HubCommand) {
        if case .release(let id) = command {
            let held = replica.read { $0.connections[id] != nil }
            // While a fresh log starts, the state is empty but the connection is announced.
            return links.withLockedValue { links in
                if held || links.announcements != nil { links.releasesToResend.append(id) }
            }
        }
        let replica = self.replica
        if let refusal = command.refusalWhileUnavailable(address: { id in replica.read { $0.sessions[id]?.address } }) {
            clusterMetrics?.commandRefused()
            replica.deliver([refusal])
        }
    }

    var now: LogTime {
        max(LocalLog.wallClock(), replica.lastTime)
    }

    // MARK: Joining

    /// Joins the cluster: checks the settings, takes a node number, starts the heartbeat,
    /// and applies the whole log so far, before the node listens.
    /// - Throws: ``ClusterError`` when Redis cannot be reached or the settings differ.
    func start() async throws {
        let writer: RedisConnection
        do {
            writer = try await connect(role: "writer", commandTimeout: .seconds(5))
        } catch {
            throw ClusterError.unreachable(url: "\(settings.redis)", reason: "\(error)")
        }
        do {
            let timeout = "\(settings.nodeTimeout.milliseconds)"
            _ = try await writer.send(RESPCommand(["SET", ClusterKeys.settings, fingerprint, "NX", "PX", timeout]))
            let current = try await writer.send(RESPCommand(["GET", ClusterKeys.settings])).string ?? fingerprint
            guard current == fingerprint else {
                await writer.close()
                throw ClusterError.settingsDiffer(cluster: current, node: fingerprint)
            }
            _ = try await writer.send(RESPCommand(["SET", ClusterKeys.epoch, Self.newEpoch(), "NX"]))
            guard let epoch = try await writer.send(RESPCommand(["GET", ClusterKeys.epoch])).string else {
                await writer.close()
                throw ClusterError.unreachable(url: "\(settings.redis)", reason: "no epoch")
            }
            let node = try await takeNodeNumber(writer)
            replica.join(asNode: node)
            links.withLockedValue {
                $0.node = node
                $0.epoch = epoch
            }
            let snapshot = try await loadSnapshot(writer)
            let (replayed, reader) = try await catchUp(
                try await connect(role: "reader", commandTimeout: Self.readBlock + .seconds(5)), epoch: epoch)
            links.withLockedValue {
                $0.writer = writer
                $0.reader = reader
                $0.unreadBeatSince = nil
                $0.lastRefresh = .now
            }
            logger.notice(
                "Joined the cluster",
                metadata: [
                    "node_number": "\(node)", "redis": "\(settings.redis)",
                    "snapshot": "\(snapshot.map { "\($0)" } ?? "none")", "entries_replayed": "\(replayed)",
                    "users_online": "\(replica.read(\.sessions.count))",
                ])
        } catch let error as ClusterError {
            throw error
        } catch {
            await writer.close()
            throw ClusterError.unreachable(url: "\(settings.redis)", reason: "\(error)")
        }
    }

    /// A new node number: the next the counter gives whose heartbeat key is free (after
    /// Redis lost its data, the counter starts again while older nodes keep their numbers;
    /// they raise it again as they announce themselves, and their keys mark theirs taken).
    private func takeNodeNumber(_ writer: RedisConnection) async throws -> NodeNumber {
        let timeout = "\(settings.nodeTimeout.milliseconds)"
        for _ in 0..<1000 {
            guard case .integer(let number) = try await writer.send(RESPCommand(["INCR", ClusterKeys.nodeCounter])),
                number > 0, NodeNumber(number) <= SessionIDSpace.maximumNode
            else { break }
            let node = NodeNumber(number)
            let taken = try await writer.send(
                RESPCommand(["SET", ClusterKeys.heartbeat(of: node), settings.nodeID, "NX", "PX", timeout]))
            if taken.string == "OK" { return node }
        }
        await writer.close()
        throw ClusterError.unreachable(url: "\(settings.redis)", reason: "no node number")
    }

    /// A random epoch value.
    static func newEpoch() -> String {
        String(UInt64.random(in: 0...UInt64.max), radix: 16) + String(UInt64.random(in: 0...UInt64.max), radix: 16)
    }

    /// Loads the cluster's snapshot, when there is one.
    /// - Returns: the id of the last entry it includes.
    /// - Throws: ``ClusterError/snapshot(_:)`` for one this version cannot read.
    private func loadSnapshot(_ writer: RedisConnection) async throws -> StreamID? {
        guard case .bulkString(let bytes) = try await writer.send(RESPCommand(["GET", ClusterKeys.snapshot])) else {
            return nil
        }
        do {
            return try load(bytes)
        } catch {
            await writer.close()
            throw ClusterError.snapshot("\(error)")
        }
    }

    /// Replaces the state by a stored snapshot's.
    /// - Returns: the id of the last entry it includes.
    private func load(_ bytes: [UInt8]) throws -> StreamID {
        let loaded = try HubSnapshot.read(bytes)
        let state = loaded.snapshot.state(configuration: configuration)
        applying.withLock {
            replica.load(state, lastTime: LogTime(milliseconds: loaded.upTo.milliseconds))
            lastApplied.withLockedValue { $0 = loaded.upTo }
            position.withLockedValue { $0 = loaded.position }
        }
        clusterMetrics?.snapshotLoaded()
        return loaded.upTo
    }

    /// Applies every entry up to the last one there is now, in batches that shrink when
    /// Redis closes the connection for a reply over its output buffer limit.
    /// - Returns: how many entries were applied, and the reader connection (another one
    ///   when Redis closed the first for a reply over its output buffer limit).
    private func catchUp(_ reader: RedisConnection, epoch: String) async throws -> (Int, RedisConnection) {
        let newest = try await reader.send(RESPCommand(["XREVRANGE", ClusterKeys.log, "+", "-", "COUNT", "1"]))
        guard let target = try StreamEntry.entries(ofRange: newest).first?.id else { return (0, reader) }
        var reader = reader
        var applied = 0
        var batch = ReadBatch()
        while lastApplied.withLockedValue({ $0 }) < target {
            let after = lastApplied.withLockedValue { $0 }
            let entries: [StreamEntry]
            do {
                let reply = try await reader.send(
                    RESPCommand(["XREAD", "COUNT", "\(batch.count)", "STREAMS", ClusterKeys.log, "\(after)"]))
                entries = try StreamEntry.entries(ofXREAD: reply)
            } catch RedisError.connectionClosed where batch.count > ReadBatch.minimum {
                batch.failed()
                logger.warning(
                    "Reading the hub log failed; reconnecting",
                    metadata: ["reason": "\(RedisError.connectionClosed)", "next_batch": "\(batch.count)"])
                await reader.close()
                reader = try await connect(role: "reader", commandTimeout: Self.readBlock + .seconds(5))
                continue
            }
            guard !entries.isEmpty, apply(entries, epoch: epoch) else { break }
            batch.succeeded(entries: entries.count)
            applied += entries.count
        }
        return (applied, reader)
    }

    /// Decodes and applies entries in order; one that cannot be read (written by a newer
    /// version) is skipped and logged rather than misread.
    /// - Parameter epoch: the epoch the entries were read in.
    /// - Returns: `false` when the node's epoch is another now (the entries are of a log
    ///   that was lost, or of a fresh one the node has not started from): none is applied.
    @discardableResult
    private func apply(_ entries: [StreamEntry], epoch: String) -> Bool {
        guard let last = entries.last?.id else { return links.withLockedValue { $0.epoch == epoch } }
        var commands: [(command: HubCommand, time: LogTime)] = []
        commands.reserveCapacity(entries.count)
        var ownBeatCameBack = false
        for entry in entries {
            guard let bytes = entry.fields[ClusterKeys.commandField] else {
                if let beat = entry.fields[ClusterKeys.beatField] {
                    ownBeatCameBack = ownBeatCameBack || beat.elementsEqual("\(replica.node)".utf8)
                } else {
                    logger.error(
                        "Skipping a hub log entry this version cannot read", metadata: ["entry": "\(entry.id)"])
                }
                continue
            }
            guard let command = try? LogEntryCoding.decode(bytes) else {
                logger.error("Skipping a hub log entry this version cannot read", metadata: ["entry": "\(entry.id)"])
                continue
            }
            commands.append((command, LogTime(milliseconds: entry.id.milliseconds)))
        }
        let current = applying.withLock {
            guard links.withLockedValue({ $0.epoch == epoch }) else { return false }
            replica.apply(commands)
            lastApplied.withLockedValue { $0 = last }
            position.withLockedValue { $0 = $0.map { $0 + Int64(entries.count) } }
            return true
        }
        guard current else { return false }
        // The stream's order: every beat taken before this one has come back too.
        if ownBeatCameBack { links.withLockedValue { $0.unreadBeatSince = nil } }
        clusterMetrics?.applied(
            entries.count, lag: .milliseconds(max(0, LocalLog.wallClock().milliseconds - last.milliseconds)))
        confirmOwnAppends(entries)
        let own = replica.node
        if commands.contains(where: { $0.command == .nodeDown(own) }) {
            // The others stopped hearing this node and released its users: the state closed
            // the connections it released (dead to the cluster, not left deaf); those it
            // admitted since stay.
            logger.error("The cluster declared this node gone (no heartbeat in time); closing its connections")
        }
        return true
    }

    /// Crosses this node's appends that came back off the ledger.
    private func confirmOwnAppends(_ entries: [StreamEntry]) {
        links.withLockedValue { links in
            guard links.ledger.unconfirmedCount > 0 else { return }
            for entry in entries {
                guard let tag = entry.fields[ClusterKeys.tagField],
                    let sequence = AppendLedger.sequence(inTag: tag, ofNode: links.node)
                else { continue }
                links.ledger.confirm(sequence)
            }
        }
    }

    /// Once the reader has applied everything up to the writer's reconnect, the appends in
    /// doubt that never came back are refused (releases are sent again).
    private func settleInDoubtAppends() {
        let applied = lastApplied.withLockedValue { $0 }
        let lost = links.withLockedValue { $0.ledger.settle(applied: applied) }
        guard !lost.isEmpty else { return }
        logger.notice("Appends lost with the connection to Redis were refused", metadata: ["count": "\(lost.count)"])
        for command in lost {
            if case .release = command {
                submit(command)
            } else {
                unavailable(command)
            }
        }
    }

    // MARK: Running

    func run() async {
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask { await self.readEntries() }
            tasks.addTask { await self.keepWriterConnected() }
            tasks.addTask { await self.beat() }
            tasks.addTask { await self.writeSnapshots() }
            for await _ in stopped {}
            tasks.cancelAll()
        }
    }

    private var isStopping: Bool { links.withLockedValue { $0.isStopping } }

    /// Reads the log until the node stops, reconnecting when the connection fails. A
    /// connection reads only in the epoch of the node's state: when the log in Redis is
    /// another (Redis lost its data), it waits until the writer has started the node on the
    /// fresh log, then reads that from its start.
    private func readEntries() async {
        var backoff = Self.backoff()
        var epoch = links.withLockedValue { $0.epoch }
        var batch = ReadBatch()
        while !isStopping {
            let reader: RedisConnection
            if let current = links.withLockedValue({ $0.reader }), epoch != nil {
                reader = current
            } else {
                guard
                    let connected = await RedisConnection.connect(
                        configuration(role: "reader", commandTimeout: Self.readBlock + .seconds(5)), group: group,
                        retryingWith: &backoff, shouldStop: { self.isStopping })
                else { return }
                let found = try? await connected.send(RESPCommand(["GET", ClusterKeys.epoch])).string
                let (known, writer) = links.withLockedValue { ($0.epoch, $0.writer) }
                guard let found, found == known else {
                    await connected.close()
                    // The writer settles it: it starts the node on the fresh log.
                    if known != nil, let writer { await writer.close() }
                    guard (try? await Task.sleep(for: .milliseconds(100))) != nil else { return }
                    continue
                }
                // Behind the trimmed log (cut off for longer than the log keeps): what was
                // missed cannot be read any more, so the node starts again from the snapshot.
                if let info = try? await StreamInfo(connected.send(RESPCommand(["XINFO", "STREAM", ClusterKeys.log]))),
                    info.missedEntries(
                        applied: lastApplied.withLockedValue { $0 }, position: position.withLockedValue { $0 })
                {
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
                let kept = links.withLockedValue { links in
                    guard !links.isStopping else { return false }
                    links.reader = connected
                    return true
                }
                guard kept else { return await connected.close() }
                clusterMetrics?.reconnected(.reader)
                logger.notice("Reading the hub log again", metadata: ["after": "\(lastApplied.withLockedValue { $0 })"])
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
                    case .mustCheckTrim(let entries, let after):
                        // Checked when the answer is in, not when the read was sent: a read
                        // sent into a partition runs only after it, perhaps after a trim.
                        // Trimming only grows, so a check after the read misses no gap (it may
                        // see one that came after the read: then the node starts again
                        // needlessly, which only happens to a node whose heartbeat lapsed).
                        let answer = try await reader.send(RESPCommand(["XINFO", "STREAM", ClusterKeys.log]))
                        if let info = StreamInfo(answer),
                            info.missedEntries(applied: after, position: position.withLockedValue { $0 })
                        {
                            try await startAgainFromSnapshot(reader, trimmed: info.trimmedCount)
                            continue
                        }
                        links.withLockedValue { $0.mayHaveMissedEntries = false }
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
                    // Perhaps Redis closed it for a reply over its output buffer limit.
                    batch.failed()
                    logger.warning(
                        "Reading the hub log failed; reconnecting",
                        metadata: ["reason": "\(error)", "next_batch": "\(batch.count)"])
                }
                links.withLockedValue { $0.reader = nil }
                epoch = nil
                await reader.close()
            }
        }
    }

    /// Why reading on the reader's event loop paused, and the batch size to go on with.
    private struct ReadPause: Sendable {
        enum Reason: Sendable {
            case stopping
            case failed(any Error)
            /// The entries were read while this node's heartbeat key may have expired: the
            /// log may have been trimmed past them, which needs a look before they apply.
            case mustCheckTrim([StreamEntry], after: StreamID)
        }

        var reason: Reason
        var batch: ReadBatch
    }

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
        guard !isStopping else { return paused.succeed(ReadPause(reason: .stopping, batch: batch)) }
        let applied = lastApplied.withLockedValue { $0 }
        var arguments = ["XREAD", "COUNT", "\(batch.count)"]
        if blocking { arguments += ["BLOCK", "\(Self.readBlock.milliseconds)"] }
        arguments += ["STREAMS", ClusterKeys.log, "\(held.last?.id ?? applied)"]
        reader.sendWithoutWaiting(RESPCommand(arguments)).whenComplete { result in
            var batch = batch
            let read: [StreamEntry]
            var entries = held
            do {
                read = try StreamEntry.entries(ofXREAD: result.get())
                if blocking && !read.isEmpty {
                    // Not counted in the batch size yet: a full read would double the next
                    // one, whose reply Redis may refuse, and these would be lost with it on
                    // every try.
                    return self.readNext(
                        reader, epoch: epoch, batch: batch, paused: paused, held: read, blocking: false)
                }
                batch.succeeded(entries: read.count)
                entries += read
                if !entries.isEmpty, self.needsTrimCheck() {
                    return paused.succeed(ReadPause(reason: .mustCheckTrim(entries, after: applied), batch: batch))
                }
                guard self.apply(entries, epoch: epoch) else { throw EpochChanged() }
                self.settleInDoubtAppends()
            } catch {
                return paused.succeed(ReadPause(reason: .failed(error), batch: batch))
            }
            guard !read.isEmpty else {
                // Nothing new: wait for it.
                return self.readNext(reader, epoch: epoch, batch: batch, paused: paused)
            }
            // Queued behind the drain the batch scheduled on this loop: the next read goes
            // out once this loop's members have been written to, so what arrives meanwhile
            // comes as one batch, and a loop that falls behind reads more slowly instead of
            // letting its shard's queue grow.
            reader.eventLoop.execute { [batch] in
                self.readNext(reader, epoch: epoch, batch: batch, paused: paused, blocking: false)
            }
        }
    }

    /// This node missed entries that were trimmed away: its state is not the others' any
    /// more, and what its users saw cannot be squared with what happened. Its connections
    /// are closed (and released for everyone through `nodeDown`), and it reads on from the
    /// snapshot, serving new connections as before.
    private func startAgainFromSnapshot(_ connection: RedisConnection, trimmed: Int64) async throws {
        logger.error(
            "This node fell behind the trimmed hub log; its users are disconnected and it starts again from the snapshot",
            metadata: [
                "applied": "\(lastApplied.withLockedValue { $0 })",
                "position": "\(position.withLockedValue { $0 }.map { "\($0)" } ?? "unknown")",
                "entries_trimmed": "\(trimmed)",
            ])
        replica.closeAll()
        submit(.nodeDown(replica.node))
        guard case .bulkString(let bytes) = try await connection.send(RESPCommand(["GET", ClusterKeys.snapshot])) else {
            throw ClusterError.snapshot("there is none")
        }
        let upTo = try load(bytes)
        clusterMetrics?.fellBehind()
        // What this node sent and did not read back was for connections now closed.
        let abandoned = links.withLockedValue { $0.ledger.abandonAll() }
        logger.notice(
            "Started again from the snapshot", metadata: ["snapshot": "\(upTo)", "abandoned": "\(abandoned.count)"])
    }

    /// Whether this node's heartbeat key may have expired (a beat was missed), so the log
    /// may be trimmed past what it has read.
    private func needsTrimCheck() -> Bool {
        let heartbeat = settings.heartbeat
        return links.withLockedValue {
            $0.mayHaveMissedEntries || ContinuousClock.now - $0.lastRefresh > heartbeat * 3 / 2
        }
    }

    /// The reader read in an epoch that is not the node's any more.
    private struct EpochChanged: Error {}

    /// Reconnects the writer whenever its connection ends.
    private func keepWriterConnected() async {
        var backoff = Self.backoff()
        while !isStopping {
            if let writer = links.withLockedValue({ $0.writer }) {
                try? await writer.closeFuture.get()
                guard !isStopping else { return }
                links.withLockedValue { $0.writer = nil }
                logger.warning("Lost the connection to Redis; reconnecting", metadata: ["redis": "\(settings.redis)"])
            }
            guard
                let writer = await RedisConnection.connect(
                    configuration(role: "writer", commandTimeout: .seconds(5)), group: group,
                    retryingWith: &backoff, shouldStop: { self.isStopping })
            else { return }
            // Where the stream ends now: what the old connection appended is before it. A
            // log that is not the one the state was built from (the epoch is gone or
            // another, or it ends before what was applied: Redis restarted without its
            // data, or from an older file) was lost: the node starts on a fresh one.
            let tail: StreamID
            do {
                let epoch = try await writer.send(RESPCommand(["GET", ClusterKeys.epoch])).string
                let newest = try await writer.send(RESPCommand(["XREVRANGE", ClusterKeys.log, "+", "-", "COUNT", "1"]))
                tail = try StreamEntry.entries(ofRange: newest).first?.id ?? .zero
                let applied = lastApplied.withLockedValue { $0 }
                let known = links.withLockedValue { $0.epoch }
                if epoch == nil || epoch != known || tail < applied {
                    try await startFreshLog(
                        on: writer,
                        because: epoch == nil
                            ? "the epoch key is gone"
                            : epoch != known ? "the epoch changed" : "the log ends before \(applied)")
                }
            } catch {
                logger.warning("Redis could not be used after reconnecting", metadata: ["reason": "\(error)"])
                await writer.close()
                continue
            }
            let nodeTimeout = settings.nodeTimeout
            let resend = links.withLockedValue { links -> [SessionID]? in
                guard !links.isStopping else { return nil }
                links.writer = writer
                links.outageLogged = false
                links.ledger.reconnected(tail: tail)
                links.judgeNotBefore = .now + nodeTimeout
                links.unreadBeatSince = nil
                defer { links.releasesToResend = [] }
                return links.releasesToResend
            }
            guard let resend else { return await writer.close() }
            clusterMetrics?.reconnected(.writer)
            logger.notice(
                "Connected to Redis again",
                metadata: ["redis": "\(settings.redis)", "releases_resent": "\(resend.count)"])
            for id in resend { submit(.release(id)) }
        }
    }

    /// Starts this node on a fresh log after Redis lost the one its state was built from:
    /// the state starts again empty; a new epoch is set unless another node set one first;
    /// this node's connections are announced in the fresh log, from which every replica
    /// rebuilds the state (conflicting names settled by log order); and the reader reads it
    /// from its start. Commands in doubt are refused (they went with the old log). Run
    /// again whole if the connection fails half-way (the announcement is idempotent).
    private func startFreshLog(on writer: RedisConnection, because reason: String) async throws {
        let begun = applying.withLock {
            links.withLockedValue {
                links -> (announced: [Reannouncement], lostEpoch: String?, abandoned: [HubCommand])? in
                if let pending = links.announcements { return (pending, links.lostEpoch, []) }
                let announced = replica.startFreshLog()
                lastApplied.withLockedValue { $0 = .zero }
                position.withLockedValue { $0 = 0 }
                links.lostEpoch = links.epoch
                links.epoch = nil
                links.announcements = announced
                return (announced, links.lostEpoch, links.ledger.abandonAll())
            }
        }
        guard let (announced, lostEpoch, abandoned) = begun else { return }
        if !abandoned.isEmpty || lostEpoch != nil {
            logger.error(
                "Redis lost the cluster's hub log; starting a fresh one and announcing this node's connections there (topics, invitations, history and bans are lost)",
                metadata: ["reason": "\(reason)", "connections": "\(announced.count)", "refused": "\(abandoned.count)"])
        }
        for command in abandoned { unavailable(command) }
        let node = replica.node
        let timeout = "\(settings.nodeTimeout.milliseconds)"
        // Compare and set: the first node to notice starts the fresh log (and clears what is
        // left of the old one); the others adopt its epoch.
        let adopted = try await writer.send(
            RESPCommand([
                "EVAL", Self.startEpochScript, "5", ClusterKeys.epoch, ClusterKeys.log, ClusterKeys.snapshot,
                ClusterKeys.snapshotLease, ClusterKeys.applied, lostEpoch ?? "", Self.newEpoch(),
            ]))
        guard let epoch = adopted.string else {
            throw ClusterError.unreachable(url: "\(settings.redis)", reason: "no epoch")
        }
        _ = try await writer.send(
            RESPCommand(["EVAL", Self.raiseCounterScript, "1", ClusterKeys.nodeCounter, "\(node)"]))
        _ = try await writer.send(RESPCommand(["SET", ClusterKeys.settings, fingerprint, "NX", "PX", timeout]))
        _ = try await writer.send(
            RESPCommand(["SET", ClusterKeys.heartbeat(of: node), settings.nodeID, "PX", timeout]))
        links.withLockedValue { $0.lastRefresh = .now }
        var start = announced.startIndex
        repeat {
            let end = min(start + Self.announcementsPerEntry, announced.endIndex)
            let command = HubCommand.reannounce(node, Array(announced[start..<end]))
            _ = try await writer.send(
                RESPCommand(bytes: [
                    Array("XADD".utf8), Array(ClusterKeys.log.utf8), [UInt8(ascii: "*")],
                    Array(ClusterKeys.commandField.utf8), LogEntryCoding.encode(command),
                ]))
            start = end
        } while start < announced.endIndex
        let reader = links.withLockedValue { links -> RedisConnection? in
            links.epoch = epoch
            links.lostEpoch = nil
            links.announcements = nil
            return links.reader
        }
        logger.notice(
            "Started on the fresh hub log",
            metadata: ["epoch": "\(epoch)", "connections_announced": "\(announced.count)"])
        // Its next read would be of the lost log's epoch: it reconnects and reads the fresh one.
        await reader?.close()
    }

    /// Connections per announcement entry: an entry stays well under a megabyte.
    static let announcementsPerEntry = 500

    /// KEYS: epoch, log, snapshot, snapshot lease, applied. ARGV: the lost epoch, a new one. Sets the
    /// new epoch (and clears the lost log's keys) when the epoch is the lost one or gone;
    /// returns the epoch in force.
    static let startEpochScript = """
        local current = redis.call('GET', KEYS[1])
        if current == false or current == ARGV[1] then
          redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
          redis.call('SET', KEYS[1], ARGV[2])
          return ARGV[2]
        end
        return current
        """

    /// KEYS: the node counter. ARGV: a node number in use. The counter never gives it again.
    static let raiseCounterScript = """
        local current = tonumber(redis.call('GET', KEYS[1]) or '0')
        if current < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
        return 1
        """

    /// Every heartbeat: refreshes this node's key (and the settings' lease), and appends
    /// `nodeDown` for each node that holds connections but whose key has expired. Liveness
    /// is judged only through a working connection: without Redis, nobody is declared gone.
    private func beat() async {
        let timeout = "\(settings.nodeTimeout.milliseconds)"
        while !isStopping {
            guard (try? await Task.sleep(for: settings.heartbeat)) != nil else { return }
            guard
                let (writer, judge, epoch) = links.withLockedValue({ links in
                    links.writer.map { ($0, ContinuousClock.now >= links.judgeNotBefore, links.epoch) }
                })
            else { continue }
            let node = replica.node
            let others =
                judge ? replica.read { state in state.connectionsPerNode.keys.filter { $0 != node } }.sorted() : []
            let applied = lastApplied.withLockedValue { $0 }
            let commands =
                [
                    RESPCommand(["GET", ClusterKeys.epoch]),
                    RESPCommand(["SET", ClusterKeys.heartbeat(of: node), settings.nodeID, "PX", timeout]),
                    RESPCommand(["PEXPIRE", ClusterKeys.settings, timeout]),
                    // Before this node's beat entry, which it has not read yet.
                    RESPCommand(["XINFO", "STREAM", ClusterKeys.log]),
                    RESPCommand(["XADD", ClusterKeys.log, "*", ClusterKeys.beatField, "\(node)"]),
                    RESPCommand(["HSET", ClusterKeys.applied, "\(node)", "\(applied)"]),
                ] + others.map { RESPCommand(["EXISTS", ClusterKeys.heartbeat(of: $0)]) }
            let sent = ContinuousClock.now
            let results = await writer.pipeline(commands)
            let nodeTimeout = settings.nodeTimeout
            links.withLockedValue { links in
                if case .success = results[1] {
                    if ContinuousClock.now - links.lastRefresh > nodeTimeout { links.mayHaveMissedEntries = true }
                    links.lastRefresh = sent
                }
                if case .success = results[4] { links.unreadBeatSince = links.unreadBeatSince ?? .now }
            }
            guard case .success(let found) = results[0], found.string == epoch else {
                // Redis lost the log under a live connection: nobody is judged on the keys
                // of a log that is gone; the writer reconnects and starts the fresh one.
                if case .success = results[0] {
                    logger.error("The cluster's epoch changed under this node; reconnecting to Redis")
                    await writer.close()
                }
                continue
            }
            if case .success(let reply) = results[3], let info = StreamInfo(reply) {
                let position = position.withLockedValue { $0 }
                if let position { clusterMetrics?.lagging(entries: max(0, info.entriesAdded - position)) }
                if info.missedEntries(applied: applied, position: position) {
                    // The reader finds the gap as it connects again, and starts from the snapshot.
                    logger.error("Entries this node has not read were trimmed; reading the log again")
                    await links.withLockedValue({ $0.reader })?.close()
                }
            }
            await reconnectIfDeaf(writer)
            for (other, result) in zip(others, results.dropFirst(6)) {
                guard case .success(.integer(0)) = result else { continue }
                let users = replica.read { state in state.connectionsPerNode[other] ?? 0 }
                logger.notice(
                    "A node's heartbeat expired; its connections are released",
                    metadata: ["node_number": "\(other)", "connections": "\(users)"])
                clusterMetrics?.nodeDeclaredDown()
                submit(.nodeDown(other))
                _ = try? await writer.send(RESPCommand(["HDEL", ClusterKeys.applied, "\(other)"]))
            }
        }
    }

    /// When a heartbeat entry Redis took has not come back to this node's reader for a node
    /// timeout, its reading is stuck somewhere no deadline sees: both connections start
    /// again, so the node never goes deaf silently. (Counted from Redis's answer to the
    /// append, not from the send: after a partition the beats sent into it are taken late,
    /// and come back at once.)
    private func reconnectIfDeaf(_ writer: RedisConnection) async {
        let timeout = settings.nodeTimeout
        let (deaf, reader) = links.withLockedValue { links in
            guard let since = links.unreadBeatSince, ContinuousClock.now - since > timeout else {
                return (false, links.reader)
            }
            links.unreadBeatSince = nil
            return (true, links.reader)
        }
        guard deaf else { return }
        logger.error(
            "This node has not read its own entries back; reconnecting to Redis",
            metadata: ["for_more_than": "\(timeout)"])
        clusterMetrics?.wentDeaf()
        await reader?.close()
        await writer.close()
    }

    /// Every snapshot interval (or `CLUSTER_SNAPSHOT_ENTRIES` entries), the node holding the snapshot lease writes the state and
    /// the id of its last entry to ``ClusterKeys/snapshot``, and trims the log behind the
    /// snapshot before: a node that loaded that one, or reads slowly, has an interval to
    /// read on. When nothing new came, the log is trimmed behind the latest snapshot.
    private func writeSnapshots() async {
        let interval = settings.snapshotInterval
        let entries = Int64(settings.snapshotEntries)
        let tick = min(interval, .seconds(1))
        var written: StreamID?
        var trimmedTo: StreamID?
        var writtenIn: String?
        var lastAttempt = ContinuousClock.now
        var positionThen = position.withLockedValue { $0 } ?? 0
        while !isStopping {
            guard (try? await Task.sleep(for: tick)) != nil else { return }
            // Every interval, or sooner once the log has grown by CLUSTER_SNAPSHOT_ENTRIES.
            let positionNow = position.withLockedValue { $0 } ?? 0
            guard ContinuousClock.now - lastAttempt >= interval || positionNow - positionThen >= entries else {
                continue
            }
            (lastAttempt, positionThen) = (.now, positionNow)
            guard let writer = links.withLockedValue({ $0.writer }) else { continue }
            let node = "\(replica.node)"
            let lease = "\(interval.milliseconds * 3)"
            let results = await writer.pipeline([
                RESPCommand(["SET", ClusterKeys.snapshotLease, node, "NX", "PX", lease]),
                RESPCommand(["GET", ClusterKeys.snapshotLease]),
                RESPCommand(["PEXPIRE", ClusterKeys.snapshotLease, lease]),
            ])
            guard case .success(let holder) = results[1], holder.string == node else {
                (written, trimmedTo) = (nil, nil)
                continue
            }
            let (state, upTo, position, epoch) = applying.withLock {
                (
                    replica.read { $0 }, lastApplied.withLockedValue { $0 }, self.position.withLockedValue { $0 },
                    links.withLockedValue { $0.epoch }
                )
            }
            guard upTo > .zero, let epoch else { continue }
            if epoch != writtenIn { (written, trimmedTo, writtenIn) = (nil, nil, epoch) }
            if upTo == written {
                // Nothing new: the log behind the latest snapshot can go.
                if let written, trimmedTo != written, await trim(writer, to: written) != nil { trimmedTo = written }
                continue
            }
            do {
                let started = ContinuousClock.now
                let bytes = try HubSnapshot(state).stored(upTo: upTo, position: position)
                // Only into the log it belongs to: never a lost log's state into a fresh one.
                let stored = await writer.pipeline([
                    RESPCommand(bytes: [
                        Array("EVAL".utf8), Array(Self.storeSnapshotScript.utf8), Array("2".utf8),
                        Array(ClusterKeys.epoch.utf8), Array(ClusterKeys.snapshot.utf8), Array(epoch.utf8), bytes,
                    ])
                ])
                guard case .success(.integer(1)) = stored[0] else { continue }
                var trimmed: Int64 = 0
                if let previous = written, let count = await trim(writer, to: previous) {
                    trimmed = count
                    trimmedTo = previous
                }
                written = upTo
                clusterMetrics?.snapshotWritten()
                logger.info(
                    "Snapshot written",
                    metadata: [
                        "up_to": "\(upTo)", "bytes": "\(bytes.count)", "users_online": "\(state.sessions.count)",
                        "entries_trimmed": "\(trimmed)", "duration": "\(ContinuousClock.now - started)",
                    ])
            } catch {
                logger.error("Snapshot not written", metadata: ["error": "\(error)"])
            }
        }
    }

    /// KEYS: epoch, snapshot. ARGV: the epoch the snapshot belongs to, the snapshot.
    static let storeSnapshotScript = """
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
        redis.call('SET', KEYS[2], ARGV[2])
        return 1
        """

    /// Removes the log's entries before `id`, or before what a live node has not applied
    /// yet, whichever is older: the log is never trimmed past a node still reading it.
    /// - Returns: how many went, or `nil` when a command failed.
    private func trim(_ writer: RedisConnection, to id: StreamID) async -> Int64? {
        guard case .success(let reported) = await writer.pipeline([RESPCommand(["HGETALL", ClusterKeys.applied])])[0]
        else { return nil }
        var positions: [(node: NodeNumber, applied: StreamID)] = []
        var pairs: [(RESPValue, RESPValue)] = []
        switch reported {
        case .map(let map): pairs = map.map { ($0.key, $0.value) }
        case .array(let flat): pairs = stride(from: 0, to: flat.count - 1, by: 2).map { (flat[$0], flat[$0 + 1]) }
        default: break
        }
        for (field, value) in pairs {
            if let node = field.string.flatMap({ NodeNumber($0) }), let applied = value.string.flatMap(StreamID.init) {
                positions.append((node, applied))
            }
        }
        let alive = await writer.pipeline(
            positions.map { RESPCommand(["EXISTS", ClusterKeys.heartbeat(of: $0.node)]) })
        var point = id
        for (position, result) in zip(positions, alive) {
            switch result {
            case .success(.integer(1)): point = min(point, position.applied)
            case .success: _ = try? await writer.send(RESPCommand(["HDEL", ClusterKeys.applied, "\(position.node)"]))
            case .failure: return nil
            }
        }
        guard
            case .integer(let count) = try? await writer.send(
                RESPCommand(["XTRIM", ClusterKeys.log, "MINID", "\(point)"]))
        else { return nil }
        if count > 0 { logger.debug("Hub log trimmed", metadata: ["before": "\(id)", "entries": "\(count)"]) }
        return count
    }

    // MARK: Shutdown

    func beginShutdown(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let (allClosed, began) = replica.awaitAllClosed(on: eventLoop) { _ in false }
        if began { replica.beginLeaving(notice: HubState.encode(ServerLine.shuttingDown)) }
        return allClosed
    }

    /// Leaves the cluster: the heartbeat key goes (the node's users already left through
    /// the log), the connections close, ``run()`` returns.
    func stop() async {
        let (writer, reader) = links.withLockedValue { links in
            links.isStopping = true
            return (links.writer, links.reader)
        }
        if let writer {
            _ = await writer.pipeline([
                RESPCommand(["DEL", ClusterKeys.heartbeat(of: replica.node)]),
                RESPCommand(["HDEL", ClusterKeys.applied, "\(replica.node)"]),
            ])
            await writer.close()
        }
        await reader?.close()
        endRun.finish()
        logger.notice("Left the cluster")
    }

    private func configuration(role: String, commandTimeout: Duration) -> RedisConnection.Configuration {
        RedisConnection.Configuration(
            url: settings.redis, clientName: "chat-\(settings.nodeID)-\(role)", connectTimeout: .seconds(5),
            commandTimeout: commandTimeout, tls: tls)
    }

    private func connect(role: String, commandTimeout: Duration) async throws -> RedisConnection {
        try await RedisConnection.connect(configuration(role: role, commandTimeout: commandTimeout), group: group)
    }
}

/// Why a node could not join its cluster.
enum ClusterError: Error, CustomStringConvertible {
    case unreachable(url: String, reason: String)
    case settingsDiffer(cluster: String, node: String)
    case snapshot(String)

    var description: String {
        switch self {
        case .unreachable(let url, let reason):
            "Cannot join the cluster: Redis at \(url) cannot be used (\(reason))"
        case .settingsDiffer(let cluster, let node):
            "Cannot join the cluster: its nodes decide with other settings. Cluster: \(cluster). This node: \(node)"
        case .snapshot(let reason):
            "Cannot join the cluster: its snapshot is refused, not misread: \(reason)"
        }
    }
}

extension Duration {
    /// Whole milliseconds, as Redis takes them.
    var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
