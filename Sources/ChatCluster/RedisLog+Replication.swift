import ChatHub
import Logging
import NIOConcurrencyHelpers
import RedisClient

/// The promise across a failover: an entry is applied only once it has reached the
/// replicas, so nothing a user saw can vanish with a primary that dies before passing it on
/// (Redis replicates asynchronously, and Sentinel promotes a replica as it is).
///
/// How a reader knows: once a batch of entries is in (pushed, or read from the stream), on
/// the reader's connection, it writes a key of its own (``ClusterKeys/fence(of:)``) and
/// sends `WAIT`. Its write comes after every entry of the batch in the primary's one
/// replication stream (Redis pushed or returned them before it ran the write), and `WAIT`
/// answers once that many replicas acknowledged it, so they have those entries too. An
/// empty read costs nothing (`RedisLog.applyFenced`). A batch costs one replication round
/// trip.
extension RedisLog {
    /// The commands that follow a read to prove it replicated, and how many replicas they
    /// wait for.
    struct ReplicationFence {
        var commands: [RESPCommand]
        var replicas: Int

        /// No replica to wait for (without sentinels, or `CLUSTER_REDIS_WAIT_REPLICAS=0`).
        static let none = ReplicationFence(commands: [], replicas: 0)
    }

    func replicationFence() -> ReplicationFence {
        let wanted = replicasToWait
        guard wanted > 0 else { return .none }
        return ReplicationFence(
            commands: [
                RESPCommand(["INCR", ClusterKeys.fence(of: replica.node)]),
                RESPCommand(["WAIT", "\(wanted)", "\(replicationTimeout.milliseconds)"]),
            ], replicas: wanted)
    }

    /// Replicas an entry must reach before it is applied: every replica the primary has (as
    /// it last said), and never fewer than the setting. A primary with fewer cannot pass the
    /// fence, and the node refuses commands until it can.
    ///
    /// Why every one: Sentinel promotes the replica of the lowest `replica-priority`, and
    /// among equals the one with the highest replication offset *as it last saw it*, which
    /// can be seconds old. Waiting for one replica of two, a line the other lacked was shown,
    /// then gone when Sentinel promoted that other one (`SentinelTests`). And why never
    /// fewer: waiting for none while the primary had none was tried; a replica that came
    /// back with its old data was promoted by Sentinel before it had synced, and what the
    /// nodes had applied meanwhile was gone with the old primary.
    var replicasToWait: Int {
        let fewest = settings.replicasToWait
        guard fewest > 0 else { return 0 }
        return max(fewest, replicasConnected.withLockedValue { $0 } ?? 0)
    }

    var replicationTimeout: Duration { settings.sentinels?.replicationTimeout ?? .seconds(1) }

    /// Whether `WAIT`'s answer says enough replicas have what the read returned.
    func replicated(_ answer: Result<RESPValue, any Error>, wanted: Int) -> Bool {
        guard case .success(.integer(let count)) = answer else { return false }
        return count >= wanted
    }

    /// What the read returned has not reached the `waitedFor` replicas in time. Each round
    /// asks the primary how many replicas it has now (for the log, to find out it was
    /// demoted, and to wait for as many) and waits again. When it lists fewer than were
    /// waited for (a replica died), the first round is a quiet retry; otherwise, until the
    /// replicas have it, the node refuses commands rather than take lines into a log a
    /// failover could lose.
    /// - Throws: when the connection fails (its entries are then read again from the
    ///   primary it reconnects to).
    func waitForReplicas(_ reader: RedisConnection, waitedFor: Int) async throws {
        let started = ContinuousClock.now
        var (round, refusing) = (0, false)
        while !isStopping {
            let role = try await reader.send(RESPCommand(["ROLE"]))
            guard let replicas = Self.replicaCount(inRole: role) else {
                // A replica now: the reader finds the primary again.
                throw RedisError.notPrimary("the reader's server says it is a \(role)")
            }
            noteReplicas(replicas)
            let wanted = replicasToWait
            if !refusing, round > 0 || wanted >= waitedFor {
                refusing = true
                if machine.withLockedValue({ $0.replicasFellShort() }) {
                    logger.error(
                        "The hub log's newest entries have not reached the replicas; commands are refused until they do",
                        metadata: [
                            "replicas": "\(wanted)", "waited": "\(replicationTimeout)",
                            "redis": "\(settings.redisDescription)",
                        ])
                }
            }
            let answer = try await reader.send(
                RESPCommand(["WAIT", "\(wanted)", "\(replicationTimeout.milliseconds)"]))
            if replicated(.success(answer), wanted: wanted) { break }
            round += 1
        }
        clusterMetrics?.replicationWaited(ContinuousClock.now - started)
        guard refusing else { return }
        let resend = machine.withLockedValue { $0.replicasCaughtUp() }
        logger.notice("The hub log's entries reach the replicas again; taking commands")
        for id in resend { submit(.release(id)) }
    }

    /// The primary said how many replicas it has (its `ROLE`). Having fewer than entries
    /// wait for, or enough again, is logged.
    func noteReplicas(_ count: Int) {
        let wanted = settings.replicasToWait
        let before = replicasConnected.withLockedValue { replicas in
            defer { replicas = count }
            return replicas
        }
        // Said at the start only when there are too few; after that, on each change.
        guard wanted > 0, ((before ?? wanted) >= wanted) != (count >= wanted) else { return }
        if count < wanted {
            logger.error(
                "The Redis primary has fewer replicas than CLUSTER_REDIS_WAIT_REPLICAS: commands are refused until enough have the hub log",
                metadata: ["replicas": "\(count)", "wanted": "\(wanted)"])
        } else {
            logger.notice("The Redis primary has enough replicas again", metadata: ["replicas": "\(count)"])
        }
    }

    /// The reader is connected to a primary (again, perhaps another after a failover): what
    /// the old connection held back is void (it is read again, and fenced again), so the
    /// node takes commands once more, waiting for as many replicas as this primary has.
    func replicationRestarted(on reader: RedisConnection) async {
        if settings.replicasToWait > 0, let role = try? await reader.send(RESPCommand(["ROLE"])),
            let replicas = Self.replicaCount(inRole: role)
        {
            noteReplicas(replicas)
        }
        let resend = machine.withLockedValue { $0.replicasCaughtUp() }
        for id in resend { submit(.release(id)) }
    }

    /// The number of replicas a `ROLE` answer of a primary lists; `nil` when the server is
    /// not a primary.
    static func replicaCount(inRole answer: RESPValue) -> Int? {
        guard case .array(let parts) = answer, parts.first?.string == "master" else { return nil }
        guard parts.count >= 3, case .array(let replicas) = parts[2] else { return 0 }
        return replicas.count
    }
}
