import ChatCore
import CoreMetrics
import NIOConcurrencyHelpers

/// What a cluster node counts of its hub log, next to ``ChatMetrics`` (only in cluster mode,
/// so a node on its own shows no cluster series).
package final class ClusterMetrics: Sendable {
    enum Connection: String, CaseIterable, Sendable {
        case writer
        case reader
    }

    private let entriesApplied: Counter
    private let lagSeconds: Meter
    private let lagEntries: Meter
    private let deafReconnects: Counter
    private let fellBehindTrim: Counter
    private let reconnects: [Connection: Counter]
    private let refusedCommands: Counter
    private let snapshotsWritten: Counter
    private let snapshotsLoaded: Counter
    private let nodesDeclaredDown: Counter
    private let failoversFollowed: Counter
    private let replicationWaits: Timer
    private let factory: any MetricsFactory
    /// `chat_cluster_redis_primary{address=...}`: 1 for the primary in use, 0 for those
    /// before it (a gauge per address, made as each is met: a handful in a node's life).
    private let primaries = NIOLockedValueBox<(current: String?, gauges: [String: Gauge])>((nil, [:]))

    package init(factory: any MetricsFactory) {
        entriesApplied = Counter(label: "chat_cluster_entries_applied_total", factory: factory)
        lagSeconds = Meter(label: "chat_cluster_log_lag_seconds", factory: factory)
        lagEntries = Meter(label: "chat_cluster_log_lag_entries", factory: factory)
        deafReconnects = Counter(label: "chat_cluster_deaf_reconnects_total", factory: factory)
        fellBehindTrim = Counter(label: "chat_cluster_fell_behind_total", factory: factory)
        reconnects = Dictionary(
            uniqueKeysWithValues: Connection.allCases.map {
                (
                    $0,
                    Counter(
                        label: "chat_cluster_redis_reconnects_total", dimensions: [("connection", $0.rawValue)],
                        factory: factory)
                )
            })
        refusedCommands = Counter(label: "chat_cluster_commands_refused_total", factory: factory)
        snapshotsWritten = Counter(
            label: "chat_cluster_snapshots_total", dimensions: [("event", "written")], factory: factory)
        snapshotsLoaded = Counter(
            label: "chat_cluster_snapshots_total", dimensions: [("event", "loaded")], factory: factory)
        nodesDeclaredDown = Counter(label: "chat_cluster_nodes_declared_down_total", factory: factory)
        failoversFollowed = Counter(label: "chat_cluster_redis_failovers_total", factory: factory)
        replicationWaits = Timer(
            label: "chat_cluster_replication_wait_seconds", preferredDisplayUnit: .seconds, factory: factory)
        self.factory = factory
        lagSeconds.set(0)
        lagEntries.set(0)
    }

    /// Entries in the log this node has not applied yet (measured every heartbeat).
    func lagging(entries: Int64) { lagEntries.set(Double(entries)) }
    /// Its own entries stopped coming back: it reconnected.
    func wentDeaf() { deafReconnects.increment() }
    /// Entries it had not read were trimmed: it started again from the snapshot.
    func fellBehind() { fellBehindTrim.increment() }

    /// A batch of entries applied; `lag`: from the newest entry's stamp to now.
    func applied(_ count: Int, lag: Duration) {
        entriesApplied.increment(by: Int64(count))
        lagSeconds.set(Double(lag.wholeMilliseconds) / 1000)
    }

    func reconnected(_ connection: Connection) { reconnects[connection]?.increment() }
    func commandRefused() { refusedCommands.increment() }
    func snapshotWritten() { snapshotsWritten.increment() }
    func snapshotLoaded() { snapshotsLoaded.increment() }
    func nodeDeclaredDown() { nodesDeclaredDown.increment() }
    /// A sentinel announced a failover and the node moved to the new primary.
    func failoverFollowed() { failoversFollowed.increment() }
    /// How long a read waited for its entries to reach the replicas.
    func replicationWaited(_ duration: Duration) {
        replicationWaits.recordNanoseconds(
            duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }

    /// The node connected to the primary at `address`.
    func usingPrimary(_ address: String) {
        let (previous, current) = primaries.withLockedValue { primaries -> (Gauge?, Gauge?) in
            guard primaries.current != address else { return (nil, nil) }
            let previous = primaries.current.flatMap { primaries.gauges[$0] }
            let current =
                primaries.gauges[address]
                ?? Gauge(label: "chat_cluster_redis_primary", dimensions: [("address", address)], factory: factory)
            primaries.gauges[address] = current
            primaries.current = address
            return (previous, current)
        }
        previous?.record(0)
        current?.record(1)
    }
}
