import ChatCore
import NIOCore

/// Puts ``HubCommand``s in one order and applies them to the hub state.
///
/// Submitting never blocks the caller's event loop: what a command causes, answers
/// included, reaches the sessions as effects through their loop shards, now (``LocalLog``)
/// or after a round trip (``RedisLog``, shared by several nodes).
package protocol HubLog: Sendable {
    /// Orders and applies a command.
    func submit(_ command: HubCommand)

    /// Reads the state as it is now (replica reads: no order needed).
    func read<T>(_ body: (HubState) -> T) -> T

    /// The time commands are stamped with now: what reads compare with.
    var now: LogTime { get }
}

/// A hub log as a node runs it: its replica (shards, session ids) and its shutdown.
package protocol NodeLog: HubLog {
    var replica: HubReplica { get }

    /// Refuses new connections and tells every local user (their last line); each
    /// connection closes once the notice is flushed.
    /// - Returns: a future that succeeds when the node's last connection has been released.
    func beginShutdown(on eventLoop: any EventLoop) -> EventLoopFuture<Void>

    /// Gets ready before the node listens (a cluster node joins and catches up).
    func start() async throws

    /// Does the log's background work (reading a shared log, heartbeats) until ``stop()``.
    func run() async

    /// Ends the background work once the node's connections are gone.
    func stop() async
}

extension NodeLog {
    package func start() async throws {}
    package func run() async {}
    package func stop() async {}

    package func shard(for eventLoop: any EventLoop) -> LoopShard? { replica.shard(for: eventLoop) }

    package func makeSessionID() -> SessionID { replica.makeSessionID() }

    package func read<T>(_ body: (HubState) -> T) -> T { replica.read(body) }

    package var shards: [LoopShard] { replica.shards }

    /// Closes whatever is still open (the shutdown grace period is over).
    package func closeAll() { replica.closeAll() }
}
