import ChatCore
import ChatHub
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import RedisClient

/// The hub log of a cluster node: commands are appended to one Redis Stream
/// (``ClusterKeys/log``), every node reads the whole stream and applies each entry to its
/// own full ``HubReplica``, at the entry's time, and carries out the effects for its own
/// sessions. A node's own users' lines reach them when they come back from the stream,
/// so every member on every node sees a room's lines in the one order of the stream.
///
/// Three connections: the writer (appends, heartbeats), the reader (reads the stream when
/// it must catch up) and the reader's subscriber, which Redis pushes each new entry to
/// (``PublishedAppend``). Each reconnects with backoff and jitter; the reader resumes after
/// the last entry it applied, so nothing is skipped or applied twice.
///
/// The decisions are ``ClusterNodeMachine``'s, held under one lock; this type and its
/// drivers, one job per file, carry them out: appending (here), joining
/// (`RedisLog+Joining`), reading (`RedisLog+Reading`, pushes taken in by
/// `RedisLog+Subscribing`), the writer's reconnects and a fresh
/// log (`RedisLog+Writer`), heartbeats (`RedisLog+Heartbeat`) and snapshots
/// (`RedisLog+Snapshots`).
package final class RedisLog: NodeLog {
    typealias Machine = ClusterNodeMachine<RedisConnection, ContinuousClock>

    package let replica: HubReplica
    let settings: ClusterSettings
    /// The settings every replica must decide with alike (``SettingsFingerprint``).
    let fingerprint: String
    let logger: Logger
    let group: any EventLoopGroup
    private let tls: TLSConfiguration?
    /// With `CLUSTER_REDIS_SENTINELS`: who names the primary; `nil`: `settings.redis` is it.
    let sentinel: RedisSentinel?
    /// How many replicas the primary said it has (`ROLE`, every heartbeat, and each round
    /// of waiting for them): an entry waits for all of them (``replicasToWait``). `nil`
    /// until it was first asked.
    let replicasConnected = NIOLockedValueBox<Int?>(nil)
    let clusterMetrics: ClusterMetrics?
    /// Every decision, and the connections they are about.
    let machine: NIOLockedValueBox<Machine>
    /// Ends when ``stop()`` is called: ``run()`` waits on it. (A stream, not a promise: a
    /// node that never joined never stops, and a promise left pending must not be dropped.)
    private let stopped: AsyncStream<Void>
    private let endRun: AsyncStream<Void>.Continuation
    /// The state's limits (a loaded snapshot takes them).
    let configuration: HubState.Configuration
    /// This node's appends, sent a loop tick at a time.
    private let appends = AppendQueue()
    /// Held while a batch is applied, so a snapshot takes a state and the id of the last
    /// entry in it that belong together. (Taken before the machine's lock, never after.)
    let applying = NIOLock()

    /// How long a reader waits for a push before it reads the stream to see whether
    /// pushes stopped coming (``subscribe(alongside:)``). Every node appends a heartbeat
    /// entry every `CLUSTER_HEARTBEAT_SECONDS` (2 by default), so a live subscription is
    /// seldom this quiet, and a read that finds nothing new costs one round trip.
    static let pushSilence = Duration.seconds(2)

    /// Reconnecting: from 50 ms, at most a second apart. Attempts against a Redis that is down
    /// cost little, and every second of waiting is a second of refused commands.
    static func backoff() -> ReconnectBackoff {
        ReconnectBackoff(initial: .milliseconds(50), maximum: .seconds(1))
    }

    package init(
        eventLoops: [any EventLoop], configuration: HubState.Configuration, settings: ClusterSettings,
        maxSendQueueBytes: Int, metrics: (any DeliveryCounting)?, clusterMetrics: ClusterMetrics? = nil, logger: Logger,
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
        self.fingerprint = SettingsFingerprint.of(configuration)
        self.configuration = configuration
        self.machine = NIOLockedValueBox(
            Machine(
                clock: ContinuousClock(),
                timing: .init(heartbeat: settings.heartbeat, nodeTimeout: settings.nodeTimeout)))
        var logger = logger
        logger[metadataKey: "node_id"] = "\(settings.nodeID)"
        self.logger = logger
        self.group = group
        var tls: TLSConfiguration?
        if settings.redis.usesTLS {
            tls = TLSConfiguration.makeClientConfiguration()
            if let caFile = settings.caFile { tls?.additionalTrustRoots = [.file(caFile)] }
        }
        self.tls = tls
        self.sentinel = settings.sentinels.map {
            RedisSentinel(sentinels: $0.addresses, masterName: $0.masterName, password: $0.password, tls: tls)
        }
        (self.stopped, self.endRun) = AsyncStream<Void>.makeStream()
    }

    // MARK: HubLog

    package func submit(_ command: HubCommand) {
        let writer: RedisConnection
        let sequence: UInt64
        let node: NodeNumber
        switch machine.withLockedValue({ $0.submit(command) }) {
        case .refuse(let logOutage):
            if let logOutage { self.logOutage(because: logOutage) }
            return unavailable(command)
        case .append(let connection, let number, let ownNode):
            (writer, sequence, node) = (connection, number, ownNode)
        }
        appends.add(
            AppendQueue.Append(
                fields: [
                    (ClusterKeys.commandField, LogEntryCoding.encode(command)),
                    (ClusterKeys.tagField, Array(AppendLedger.entryTag(node: node, sequence: sequence).utf8)),
                ], sequence: sequence, writer: writer,
                failed: { self.appendFailed(sequence: sequence, writer: writer, error: $0) }))
    }

    /// An append Redis refused (an error reply: it is not in the log, and is refused to
    /// its sender), or that may or may not have reached it (the connection failed: in doubt
    /// until the writer reconnects and the reader has read that far; ``AppendLedger``).
    func appendFailed(sequence: UInt64, writer: RedisConnection, error: RedisError) {
        if error.message.contains("READONLY") {
            // A replica now (a demoted primary): never written to again; the writer finds
            // the primary anew.
            logger.warning("The Redis this node appends to is a replica now; finding the primary again")
            writer.closeSoon()
        }
        let (logOutage, refused) = machine.withLockedValue {
            $0.appendFailed(sequence: sequence, rejectedByRedis: error.code == .server)
        }
        if logOutage { self.logOutage(because: "\(error)") }
        if let refused { unavailable(refused) }
    }

    /// Logs the loss of Redis (the machine says when: once per outage).
    private func logOutage(because reason: String) {
        logger.error(
            "Cannot append to the cluster's hub log; commands are refused until Redis is back",
            metadata: ["reason": "\(reason)", "redis": "\(settings.redisDescription)"])
    }

    /// A command that is not in the log: its requester is told the chat is briefly
    /// unavailable; a release is kept and sent again once Redis is back.
    /// - Parameter address: where a session's lines go; by default the state's, but a
    ///   fresh log empties the state before its abandoned commands are refused, and passes
    ///   the addresses it announces instead.
    func unavailable(_ command: HubCommand, address: ((SessionID) -> SessionAddress?)? = nil) {
        if case .release(let id) = command {
            let held = replica.read { $0.connections[id] != nil }
            return machine.withLockedValue { $0.keepRelease(id, isHeld: held) }
        }
        let replica = self.replica
        let address = address ?? { id in replica.read { $0.sessions[id]?.address } }
        if let refusal = command.refusalWhileUnavailable(address: address) {
            clusterMetrics?.commandRefused()
            replica.deliver([refusal])
            return
        }
        // The state does not know the sender: a fresh log was begun, and this node's users are
        // not announced in it yet. The sender is one of this node's sessions all the same:
        // every shard is given the refusal, and the one that holds the session writes it
        // (the others, and other nodes' sessions, are passed over).
        let everywhere = shards.indices.compactMap { shard in
            command.refusalWhileUnavailable { SessionAddress(id: $0, shard: shard) }
        }
        guard !everywhere.isEmpty else { return }
        clusterMetrics?.commandRefused()
        replica.deliver(everywhere)
    }

    package var now: LogTime {
        max(LocalLog.wallClock(), replica.lastTime)
    }

    // MARK: Running

    package func run() async {
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask { await self.readEntries() }
            tasks.addTask { await self.keepWriterConnected() }
            tasks.addTask { await self.beat() }
            tasks.addTask { await self.judgeOthers() }
            tasks.addTask { await self.writeSnapshots() }
            tasks.addTask { await self.followFailovers() }
            for await _ in stopped {}
            tasks.cancelAll()
        }
    }

    var isStopping: Bool { machine.withLockedValue { $0.isStopping } }

    /// The id of the last entry applied, and how many entries the log had taken up to it.
    var progress: (applied: StreamID, position: Int64?) {
        machine.withLockedValue { ($0.lastApplied, $0.position) }
    }

    // MARK: Shutdown

    package func beginShutdown(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let (allClosed, began) = replica.awaitAllClosed(on: eventLoop) { _ in false }
        if began { replica.beginLeaving(notice: HubState.encode(ServerLine.shuttingDown)) }
        return allClosed
    }

    /// Leaves the cluster: the heartbeat key goes (the node's users already left through
    /// the log), the connections close, ``run()`` returns.
    package func stop() async {
        let (writer, reader) = machine.withLockedValue { $0.stop() }
        if let writer {
            _ = await writer.pipeline([
                RESPCommand(["DEL", ClusterKeys.heartbeat(of: replica.node)]),
                RESPCommand(["HDEL", ClusterKeys.applied, "\(replica.node)"]),
                RESPCommand(["DEL", ClusterKeys.fence(of: replica.node)]),
            ])
            await writer.close()
        }
        await reader?.close()
        endRun.finish()
        logger.notice("Left the cluster")
    }

    func configuration(role: String, commandTimeout: Duration) -> RedisConnection.Configuration {
        RedisConnection.Configuration(
            url: settings.redis, clientName: "chat-\(settings.nodeID)-\(role)", connectTimeout: .seconds(5),
            commandTimeout: commandTimeout, tls: tls)
    }

    /// Connects to the Redis the hub log is in: the URL's, or the primary the sentinels
    /// name, once it says it is one.
    func connect(role: String, commandTimeout: Duration) async throws -> RedisConnection {
        let configuration = configuration(role: role, commandTimeout: commandTimeout)
        let connection: RedisConnection
        if let sentinel {
            connection = try await sentinel.connectToPrimary(configuration, group: group)
        } else {
            connection = try await RedisConnection.connect(configuration, group: group)
        }
        clusterMetrics?.usingPrimary("\(RedisAddress(host: connection.host, port: connection.port))")
        return connection
    }

    /// Connects as ``connect(role:commandTimeout:)`` does; after each failure waits as
    /// `backoff` says and tries again (asking the sentinels again), until it succeeds or
    /// the node stops.
    func connectRetrying(
        role: String, commandTimeout: Duration, backoff: inout ReconnectBackoff
    ) async -> RedisConnection? {
        var failures = 0
        while !isStopping && !Task.isCancelled {
            do {
                let connection = try await connect(role: role, commandTimeout: commandTimeout)
                backoff.reset()
                return connection
            } catch {
                failures += 1
                // Said once an outage is under way, not on every attempt of a failover.
                if failures == 10 {
                    logger.warning(
                        "Redis cannot be reached yet; still trying",
                        metadata: ["connection": "\(role)", "reason": "\(error)"])
                }
                guard (try? await Task.sleep(for: backoff.nextDelay())) != nil else { return nil }
            }
        }
        return nil
    }
}
