import RedisClient

/// How this node joins a cluster: the Redis that carries the hub log, and its heartbeats.
public struct ClusterSettings: Sendable, Equatable {
    public var redis: RedisURL
    /// Extra trusted CA certificates for `rediss://`.
    public var caFile: String?
    public var nodeID: String
    public var heartbeat: Duration
    /// A node without a heartbeat for this long is gone.
    public var nodeTimeout: Duration
    /// How often the snapshot is written (by one node at a time).
    public var snapshotInterval: Duration
    /// Entries after which the snapshot is written sooner: under heavy chat the log kept
    /// between snapshots stays bounded in entries, not only in time.
    public var snapshotEntries: Int

    public init(
        redis: RedisURL, caFile: String? = nil, nodeID: String, heartbeat: Duration, nodeTimeout: Duration,
        snapshotInterval: Duration = .seconds(30), snapshotEntries: Int = 100_000
    ) {
        self.snapshotEntries = snapshotEntries
        self.redis = redis
        self.caFile = caFile
        self.nodeID = nodeID
        self.heartbeat = heartbeat
        self.nodeTimeout = nodeTimeout
        self.snapshotInterval = snapshotInterval
    }
}
