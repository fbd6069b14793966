import ChatHub
import Logging
import NIOConcurrencyHelpers
import RedisClient

/// The heartbeat: this node's key refreshed, its beat entry appended (to notice going deaf),
/// its position reported (so the log is not trimmed past it), and others judged.
extension RedisLog {
    /// Every heartbeat: refreshes this node's key (and the settings' lease), and appends
    /// its beat entry. Other nodes are judged by ``judgeOthers()``.
    func beat() async {
        let timeout = "\(settings.nodeTimeout.milliseconds)"
        while !isStopping {
            guard (try? await Task.sleep(for: settings.heartbeat)) != nil else { return }
            guard let beat = machine.withLockedValue({ $0.beat() }) else { continue }
            let node = replica.node
            let commands =
                [
                    RESPCommand(["GET", ClusterKeys.epoch]),
                    RESPCommand(["SET", ClusterKeys.heartbeat(of: node), settings.nodeID, "PX", timeout]),
                    RESPCommand(["PEXPIRE", ClusterKeys.settings, timeout]),
                    // Before this node's beat entry, which it has not read yet.
                    RESPCommand(["XINFO", "STREAM", ClusterKeys.log]),
                    PublishedAppend.command(records: [[(ClusterKeys.beatField, Array("\(node)".utf8))]]),
                    RESPCommand(["HSET", ClusterKeys.applied, "\(node)", "\(beat.applied)"]),
                ]
                // With sentinels: whether this is still the primary, and how many replicas
                // an entry waits for.
                + (sentinel == nil ? [] : [RESPCommand(["ROLE"])])
            let results = await beat.writer.pipeline(commands)
            if sentinel != nil, case .success(let role) = results[commands.count - 1] {
                guard let replicas = Self.replicaCount(inRole: role) else {
                    // Demoted under a live connection, and no sentinel said so to this node.
                    logger.warning(
                        "The Redis this node writes to is not the primary any more; finding the primary again")
                    await machine.withLockedValue({ $0.reader })?.close()
                    await beat.writer.close()
                    continue
                }
                noteReplicas(replicas)
            }
            machine.withLockedValue {
                $0.beatAnswered(
                    sentAt: beat.sentAt, refreshed: (try? results[1].get()) != nil,
                    beatTaken: PublishedAppend.tookTheOne(results[4]))
            }
            guard case .success(let found) = results[0], found.string == beat.epoch else {
                // Redis lost the log under a live connection: nobody is judged on the keys
                // of a log that is gone; the writer reconnects and starts the fresh one.
                if case .success = results[0] {
                    logger.error("The cluster's epoch changed under this node; reconnecting to Redis")
                    await beat.writer.close()
                }
                continue
            }
            if case .success(let reply) = results[3], let info = StreamInfo(reply) {
                let position = progress.position
                if let position { clusterMetrics?.lagging(entries: max(0, info.entriesAdded - position)) }
                if info.missedEntries(applied: beat.applied, position: position) {
                    // The reader finds the gap as it connects again, and starts from the snapshot.
                    logger.error("Entries this node has not read were trimmed; reading the log again")
                    await machine.withLockedValue({ $0.reader })?.close()
                }
            }
            await reconnectIfDeaf(beat.writer)
        }
    }

    /// Appends `nodeDown` for each node that holds connections but whose heartbeat key has
    /// expired. A dead node's key expires at most the node timeout after it died; checked
    /// with each heartbeat, noticing it could take a heartbeat more (2 s by default), so it
    /// is checked four times per heartbeat, at least every 500 ms. Liveness is judged only
    /// through a working connection: without Redis, nobody is declared gone.
    func judgeOthers() async {
        let interval = min(settings.heartbeat / 4, .milliseconds(500))
        // Each other node's `NODE_ID`, as its heartbeat key last held it: a node whose key
        // is gone is named by it in the log.
        var nodeIDs: [NodeNumber: String] = [:]
        while !isStopping {
            guard (try? await Task.sleep(for: interval)) != nil else { return }
            guard let beat = machine.withLockedValue({ $0.beat() }), beat.judgesOthers else { continue }
            let node = replica.node
            let others = replica.read { state in state.connectionsPerNode.keys.filter { $0 != node } }.sorted()
            guard !others.isEmpty else { continue }
            let results = await beat.writer.pipeline(
                [RESPCommand(["GET", ClusterKeys.epoch])]
                    + others.map { RESPCommand(["GET", ClusterKeys.heartbeat(of: $0)]) })
            // Nobody is judged on the keys of a log Redis has lost (the heartbeat notices).
            guard case .success(let epoch) = results[0], epoch.string == beat.epoch else { continue }
            for (other, result) in zip(others, results.dropFirst()) {
                guard case .success(let key) = result else { continue }
                if let id = key.string {
                    nodeIDs[other] = id
                    continue
                }
                let users = replica.read { state in state.connectionsPerNode[other] ?? 0 }
                logger.notice(
                    "A node's heartbeat expired; its connections are released",
                    metadata: [
                        "dead_node_id": "\(nodeIDs.removeValue(forKey: other) ?? "unknown")",
                        "dead_node_number": "\(other)", "connections": "\(users)",
                    ])
                clusterMetrics?.nodeDeclaredDown()
                submit(.nodeDown(other))
                _ = try? await beat.writer.send(RESPCommand(["HDEL", ClusterKeys.applied, "\(other)"]))
            }
        }
    }

    /// When a heartbeat entry Redis took has not come back to this node's reader for a node
    /// timeout, its reading is stuck somewhere no deadline sees: both connections start
    /// again, so the node never goes deaf silently.
    private func reconnectIfDeaf(_ writer: RedisConnection) async {
        let (deaf, reader) = machine.withLockedValue { ($0.isDeaf(), $0.reader) }
        guard deaf else { return }
        logger.error(
            "This node has not read its own entries back; reconnecting to Redis",
            metadata: ["for_more_than": "\(settings.nodeTimeout)"])
        clusterMetrics?.wentDeaf()
        await reader?.close()
        await writer.close()
    }
}
