import ChatCore
import ChatHub
import Logging
import NIOConcurrencyHelpers
import RedisClient

/// Joining: the settings check, a node number, the snapshot and the log so far, before the
/// node listens.
extension RedisLog {
    /// Joins the cluster: checks the settings, takes a node number, starts the heartbeat,
    /// and applies the whole log so far, before the node listens.
    /// - Throws: ``ClusterError`` when Redis cannot be reached or the settings differ.
    package func start() async throws {
        let writer: RedisConnection
        do {
            writer = try await connect(role: "writer", commandTimeout: .seconds(5))
        } catch {
            throw ClusterError.unreachable(url: settings.redisDescription, reason: "\(error)")
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
                throw ClusterError.unreachable(url: settings.redisDescription, reason: "no epoch")
            }
            if sentinel != nil,
                let replicas = Self.replicaCount(inRole: try await writer.send(RESPCommand(["ROLE"])))
            {
                noteReplicas(replicas)
            }
            let node = try await takeNodeNumber(writer)
            replica.join(asNode: node)
            machine.withLockedValue { $0.joined(asNode: node, epoch: epoch) }
            let snapshot = try await loadSnapshot(writer)
            let (replayed, reader) = try await catchUp(
                try await connect(role: "reader", commandTimeout: Self.pushSilence + .seconds(5)), epoch: epoch)
            machine.withLockedValue { $0.started(writer: writer, reader: reader) }
            logger.notice(
                "Joined the cluster",
                metadata: [
                    "node_number": "\(node)", "redis": "\(settings.redisDescription)",
                    "snapshot": "\(snapshot.map { "\($0)" } ?? "none")", "entries_replayed": "\(replayed)",
                    "users_online": "\(replica.read(\.sessions.count))",
                ])
        } catch let error as ClusterError {
            throw error
        } catch {
            await writer.close()
            throw ClusterError.unreachable(url: settings.redisDescription, reason: "\(error)")
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
        throw ClusterError.unreachable(url: settings.redisDescription, reason: "no node number")
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
    func load(_ bytes: [UInt8]) throws -> StreamID {
        let loaded = try HubSnapshot.read(bytes, configuration: configuration)
        applying.withLock {
            replica.load(loaded.state, lastTime: LogTime(milliseconds: loaded.upTo.milliseconds))
            machine.withLockedValue { $0.loaded(upTo: loaded.upTo, position: loaded.position) }
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
        while progress.applied < target {
            let after = progress.applied
            let entries: [StreamEntry]
            do {
                let reply = try await reader.send(
                    RESPCommand(["XREAD", "COUNT", "\(batch.count)", "STREAMS", ClusterKeys.log, "\(after)"]))
                entries = try StreamEntry.entries(ofXREAD: reply)
            } catch let error as RedisError where error.code == .connectionClosed && batch.count > ReadBatch.minimum {
                batch.failed()
                logger.warning(
                    "Reading the hub log failed; reconnecting",
                    metadata: ["reason": "\(RedisError.connectionClosed)", "next_batch": "\(batch.count)"])
                await reader.close()
                reader = try await connect(role: "reader", commandTimeout: Self.pushSilence + .seconds(5))
                continue
            }
            // Entries a failover could still lose are not applied: the fence's answer says.
            if !entries.isEmpty {
                let fence = replicationFence()
                let answers = await reader.pipeline(fence.commands)
                if let waited = answers.last, !replicated(waited.mapError { $0 }, wanted: fence.replicas) {
                    try await waitForReplicas(reader, waitedFor: fence.replicas)
                }
            }
            guard !entries.isEmpty, apply(entries, epoch: epoch) else { break }
            batch.succeeded(entries: entries.count)
            applied += entries.count
        }
        return (applied, reader)
    }
}
