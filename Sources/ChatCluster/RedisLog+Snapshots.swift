import ChatHub
import Logging
import NIOConcurrencyHelpers
import RedisClient

/// The snapshot writer: the node holding the lease stores the state and trims the log
/// behind it, as ``SnapshotSchedule`` decides.
extension RedisLog {
    /// Every snapshot interval (or `CLUSTER_SNAPSHOT_ENTRIES` records), the node holding the
    /// snapshot lease writes the state and the id of its last entry to
    /// ``ClusterKeys/snapshot``, and trims the log behind the snapshot before.
    func writeSnapshots() async {
        let interval = settings.snapshotInterval
        let tick = min(interval, .seconds(1))
        var schedule = SnapshotSchedule(
            clock: ContinuousClock(), interval: interval, entries: Int64(settings.snapshotEntries),
            recordsApplied: machine.withLockedValue { $0.recordsApplied })
        while !isStopping {
            guard (try? await Task.sleep(for: tick)) != nil else { return }
            guard schedule.isDue(recordsApplied: machine.withLockedValue({ $0.recordsApplied })) else { continue }
            guard let writer = machine.withLockedValue({ $0.writer }) else { continue }
            let node = "\(replica.node)"
            let lease = "\(interval.milliseconds * 3)"
            let results = await writer.pipeline([
                RESPCommand(["SET", ClusterKeys.snapshotLease, node, "NX", "PX", lease]),
                RESPCommand(["GET", ClusterKeys.snapshotLease]),
                RESPCommand(["PEXPIRE", ClusterKeys.snapshotLease, lease]),
            ])
            guard case .success(let holder) = results[1], holder.string == node else {
                schedule.leaseLost()
                continue
            }
            let (state, upTo, position, epoch, mayTrim) = applying.withLock {
                let (upTo, position, epoch, mayTrim) = machine.withLockedValue {
                    ($0.lastApplied, $0.position, $0.epoch, $0.mayTrim)
                }
                return (replica.read { $0 }, upTo, position, epoch, mayTrim)
            }
            guard let epoch else { continue }
            switch schedule.next(upTo: upTo, epoch: epoch, trimming: mayTrim) {
            case .nothing:
                continue
            case .trim(let point):
                if await trim(writer, to: point) != nil { schedule.trimmed(to: point) }
            case .write(let previous):
                do {
                    let started = ContinuousClock.now
                    let bytes = try HubSnapshot.stored(state, upTo: upTo, position: position)
                    // Only into the log it belongs to: never a lost log's state into a fresh one.
                    let stored = await writer.pipeline([
                        RESPCommand(bytes: [
                            Array("EVAL".utf8), Array(Self.storeSnapshotScript.utf8), Array("2".utf8),
                            Array(ClusterKeys.epoch.utf8), Array(ClusterKeys.snapshot.utf8), Array(epoch.utf8), bytes,
                        ])
                    ])
                    guard case .success(.integer(1)) = stored[0] else { continue }
                    var trimmed: Int64 = 0
                    if let previous, let count = await trim(writer, to: previous) {
                        trimmed = count
                        schedule.trimmed(to: previous)
                    }
                    schedule.wrote(upTo: upTo)
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
}
