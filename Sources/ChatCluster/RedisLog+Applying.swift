import ChatCore
import ChatHub
import Logging
import NIOConcurrencyHelpers
import RedisClient

/// Applying what was read: decoding, the replica, this node's own appends coming back, the
/// appends in doubt settled, and starting again from the snapshot after a trimmed gap.
extension RedisLog {
    /// Decodes and applies the entries' records in order; one that cannot be read (written
    /// by a newer version) is skipped and logged rather than misread.
    /// - Parameter epoch: the epoch the entries were read in.
    /// - Returns: `false` when the node's epoch is another now (the entries are of a log
    ///   that was lost, or of a fresh one the node has not started from): none is applied.
    @discardableResult
    func apply(_ entries: [StreamEntry], epoch: String) -> Bool {
        guard let last = entries.last?.id else { return machine.withLockedValue { $0.isCurrent(epoch: epoch) } }
        let records = entries.reduce(0) { $0 + $1.records.count }
        var commands: [(command: HubCommand, time: LogTime)] = []
        commands.reserveCapacity(records)
        var ownBeatCameBack = false
        for entry in entries {
            for record in entry.records {
                if let bytes = record.command, let command = try? LogEntryCoding.decode(bytes) {
                    commands.append((command, LogTime(milliseconds: entry.id.milliseconds)))
                } else if record.command == nil, let beat = record.beat {
                    ownBeatCameBack = ownBeatCameBack || beat.elementsEqual("\(replica.node)".utf8)
                } else {
                    logger.error(
                        "Skipping a hub log entry this version cannot read", metadata: ["entry": "\(entry.id)"])
                }
            }
        }
        let current = applying.withLock {
            guard machine.withLockedValue({ $0.isCurrent(epoch: epoch) }) else { return false }
            replica.apply(commands)
            machine.withLockedValue { machine in
                machine.applied(
                    count: entries.count, records: records, upTo: last, ownBeatCameBack: ownBeatCameBack)
                guard machine.awaitsOwnAppends else { return }
                for entry in entries {
                    for record in entry.records {
                        if let tag = record.tag { machine.confirm(tag: tag) }
                    }
                }
            }
            return true
        }
        guard current else { return false }
        clusterMetrics?.applied(
            records, lag: .milliseconds(max(0, LocalLog.wallClock().milliseconds - last.milliseconds)))
        let own = replica.node
        if commands.contains(where: { $0.command == .nodeDown(own) }) {
            // The others stopped hearing this node and released its users: the state closed
            // the connections it released (dead to the cluster, not left deaf); those it
            // admitted since stay.
            logger.error("The cluster declared this node gone (no heartbeat in time); closing its connections")
        }
        return true
    }

    /// Once the reader has applied everything up to the writer's reconnect, the appends in
    /// doubt that never came back are refused (releases are sent again).
    func settleInDoubtAppends() {
        let lost = machine.withLockedValue { $0.settle() }
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

    /// This node missed entries that were trimmed away: its state is not the others' any
    /// more, and what its users saw cannot be squared with what happened. Its connections
    /// are closed (and released for everyone through `nodeDown`), and it reads on from the
    /// snapshot, serving new connections as before.
    func startAgainFromSnapshot(_ connection: RedisConnection, trimmed: Int64) async throws {
        let (applied, position) = progress
        logger.error(
            "This node fell behind the trimmed hub log; its users are disconnected and it starts again from the snapshot",
            metadata: [
                "applied": "\(applied)", "position": "\(position.map { "\($0)" } ?? "unknown")",
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
        let abandoned = machine.withLockedValue { $0.abandonAppends() }
        logger.notice(
            "Started again from the snapshot", metadata: ["snapshot": "\(upTo)", "abandoned": "\(abandoned.count)"])
    }
}
