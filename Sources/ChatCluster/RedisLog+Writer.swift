import ChatHub
import Logging
import NIOConcurrencyHelpers
import NIOCore
import RedisClient

/// The writer's connection: kept up, and on every reconnect a look at whether Redis still
/// holds the log this node's state was built from; if not, the node starts a fresh one.
extension RedisLog {
    /// Reconnects the writer whenever its connection ends.
    func keepWriterConnected() async {
        var backoff = Self.backoff()
        while !isStopping {
            if let writer = machine.withLockedValue({ $0.writer }) {
                try? await writer.closeFuture.get()
                guard !isStopping else { return }
                machine.withLockedValue { $0.writerLost() }
                logger.warning(
                    "Lost the connection to Redis; reconnecting", metadata: ["redis": "\(settings.redisDescription)"])
            }
            guard let writer = await connectRetrying(role: "writer", commandTimeout: .seconds(5), backoff: &backoff)
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
                if let reason = machine.withLockedValue({ $0.lostLog(epoch: epoch, tail: tail) }) {
                    try await startFreshLog(on: writer, because: reason)
                }
            } catch {
                logger.warning("Redis could not be used after reconnecting", metadata: ["reason": "\(error)"])
                await writer.close()
                continue
            }
            guard let resend = machine.withLockedValue({ $0.writerConnected(writer, tail: tail) }) else {
                return await writer.close()
            }
            clusterMetrics?.reconnected(.writer)
            logger.notice(
                "Connected to Redis again",
                metadata: ["redis": "\(settings.redisDescription)", "releases_resent": "\(resend.count)"])
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
        let (announced, lostEpoch, abandoned) = applying.withLock {
            machine.withLockedValue { $0.beginFreshLog(takeAnnouncements: replica.startFreshLog) }
        }
        if !abandoned.isEmpty || lostEpoch != nil {
            logger.error(
                "Redis lost the cluster's hub log; starting a fresh one and announcing this node's connections there (topics, invitations, history and bans are lost)",
                metadata: ["reason": "\(reason)", "connections": "\(announced.count)", "refused": "\(abandoned.count)"])
        }
        // The state that knew where their senders' lines go is empty now: the announcements
        // still know. (Looked up in the emptied state, a line in flight got neither its
        // echo nor the outage line.)
        let addresses = Dictionary(
            announced.compactMap { connection in connection.address.map { (connection.sessionID, $0) } },
            uniquingKeysWith: { first, _ in first })
        for command in abandoned { unavailable(command, address: { addresses[$0] }) }
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
            throw ClusterError.unreachable(url: settings.redisDescription, reason: "no epoch")
        }
        _ = try await writer.send(
            RESPCommand(["EVAL", Self.raiseCounterScript, "1", ClusterKeys.nodeCounter, "\(node)"]))
        _ = try await writer.send(RESPCommand(["SET", ClusterKeys.settings, fingerprint, "NX", "PX", timeout]))
        _ = try await writer.send(
            RESPCommand(["SET", ClusterKeys.heartbeat(of: node), settings.nodeID, "PX", timeout]))
        machine.withLockedValue { $0.refreshed() }
        var start = announced.startIndex
        repeat {
            let end = min(start + Self.announcementsPerEntry, announced.endIndex)
            let command = HubCommand.reannounce(node, Array(announced[start..<end]))
            let reply = try await writer.send(
                PublishedAppend.command(records: [[(ClusterKeys.commandField, LogEntryCoding.encode(command))]]))
            guard PublishedAppend.tookTheOne(.success(reply)) else {
                throw ClusterError.unreachable(
                    url: settings.redisDescription, reason: "the announcement was refused: \(reply)")
            }
            start = end
        } while start < announced.endIndex
        let reader = machine.withLockedValue { $0.freshLogStarted(epoch: epoch) }
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
}
