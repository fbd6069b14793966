import Logging
import NIOConcurrencyHelpers
import NIOCore
import RedisClient

/// Following a failover: with sentinels, the node listens for `+switch-master` and moves
/// both its connections to the new primary at once, rather than when a command times out
/// (a primary cut off by a partition answers nothing, and closes nothing).
extension RedisLog {
    /// Subscribes to one sentinel at a time (the next when it fails) and follows every
    /// switch of this cluster's primary. The heartbeat's `ROLE` is the backstop for a
    /// switch no sentinel could tell this node of.
    func followFailovers() async {
        guard let sentinel else { return }
        var backoff = Self.backoff()
        var next = 0
        while !isStopping && !Task.isCancelled {
            let address = sentinel.sentinels[next % sentinel.sentinels.count]
            next += 1
            let (switches, announce) = AsyncStream<RedisSentinel.Switch>.makeStream()
            do {
                let connection = try await RedisConnection.connect(
                    sentinel.configuration(of: address, clientName: "chat-\(settings.nodeID)-sentinel"), group: group
                ) { push in
                    if let change = RedisSentinel.Switch(push: push) { announce.yield(change) }
                }
                connection.closeFuture.whenComplete { _ in announce.finish() }
                try await connection.sendExpectingNoReply(RESPCommand(["SUBSCRIBE", "+switch-master"]))
                backoff.reset()
                await withTaskCancellationHandler {
                    for await change in switches where change.masterName == sentinel.masterName {
                        await follow(change, sentinel: sentinel)
                    }
                } onCancel: {
                    connection.closeSoon()
                }
            } catch {
                logger.debug(
                    "A sentinel cannot be listened to", metadata: ["sentinel": "\(address)", "reason": "\(error)"])
            }
            guard (try? await Task.sleep(for: backoff.nextDelay())) != nil else { return }
        }
    }

    /// A sentinel announced a failover: the connections on another server than the primary
    /// close, and reconnect to it. Which server that is, the sentinels say together (the
    /// newest configuration), not the announcement alone: a sentinel whose earlier failover
    /// timed out announces a switch to the replica it promoted then, which may be stale.
    /// Appends in flight on the old primary are settled as after any lost connection (by
    /// their tags, once the reader has caught up with the new one).
    private func follow(_ change: RedisSentinel.Switch, sentinel: RedisSentinel) async {
        clusterMetrics?.failoverFollowed()
        let primary = (try? await sentinel.primary(group: group, clientName: "chat-\(settings.nodeID)-sentinel"))
        let (writer, reader) = machine.withLockedValue { ($0.writer, $0.reader) }
        let elsewhere = [writer, reader].compactMap { $0 }.filter {
            RedisAddress(host: $0.host, port: $0.port) != primary
        }
        logger.notice(
            "Redis failed over; following the new primary",
            metadata: [
                "from": "\(change.from)", "to": "\(primary.map { "\($0)" } ?? "unknown yet")",
                "announced": "\(change.to)", "connections_moved": "\(elsewhere.count)",
            ])
        for connection in elsewhere { await connection.close() }
    }
}
