import RedisClient

/// How this node joins a cluster: the Redis that carries the hub log, and its heartbeats.
public struct ClusterSettings: Sendable, Equatable {
    /// The Redis server; with ``sentinels``, only its password, user, database and TLS are
    /// used (the sentinels say where the primary is).
    public var redis: RedisURL
    /// Extra trusted CA certificates for `rediss://`.
    public var caFile: String?
    /// `CLUSTER_REDIS_SENTINELS`: the primary is the one these sentinels name, followed
    /// across failovers; `nil`: ``redis`` is the server.
    public var sentinels: Sentinels?
    public var nodeID: String
    public var heartbeat: Duration
    /// A node without a heartbeat for this long is gone.
    public var nodeTimeout: Duration
    /// How often the snapshot is written (by one node at a time).
    public var snapshotInterval: Duration
    /// Entries after which the snapshot is written sooner: under heavy chat the log kept
    /// between snapshots stays bounded in entries, not only in time.
    public var snapshotEntries: Int

    /// Redis Sentinel in front of a primary and its replicas.
    public struct Sentinels: Sendable, Equatable {
        public var addresses: [RedisAddress]
        /// `CLUSTER_REDIS_MASTER_NAME`.
        public var masterName: String
        /// `REDIS_SENTINEL_PASSWORD`: the sentinels' own. Never logged.
        public var password: String?
        /// `CLUSTER_REDIS_WAIT_REPLICAS`: how many replicas must hold an entry before any
        /// node applies it, so that nothing a user saw is lost when a replica is promoted.
        /// 0: entries apply as the primary takes them (a failover may lose the newest).
        public var replicasToWait: Int
        /// `CLUSTER_REDIS_WAIT_TIMEOUT_MS`: how long a read waits for its entries to reach
        /// the replicas before the node refuses commands (it keeps waiting).
        public var replicationTimeout: Duration

        public init(
            addresses: [RedisAddress], masterName: String, password: String? = nil, replicasToWait: Int = 1,
            replicationTimeout: Duration = .seconds(1)
        ) {
            self.addresses = addresses
            self.masterName = masterName
            self.password = password
            self.replicasToWait = replicasToWait
            self.replicationTimeout = replicationTimeout
        }
    }

    public init(
        redis: RedisURL, caFile: String? = nil, sentinels: Sentinels? = nil, nodeID: String, heartbeat: Duration,
        nodeTimeout: Duration, snapshotInterval: Duration = .seconds(30), snapshotEntries: Int = 100_000
    ) {
        self.snapshotEntries = snapshotEntries
        self.redis = redis
        self.caFile = caFile
        self.sentinels = sentinels
        self.nodeID = nodeID
        self.heartbeat = heartbeat
        self.nodeTimeout = nodeTimeout
        self.snapshotInterval = snapshotInterval
    }

    /// The Redis in use, for logs and errors (never a password).
    public var redisDescription: String {
        guard let sentinels else { return "\(redis)" }
        return "the primary '\(sentinels.masterName)' of sentinels "
            + sentinels.addresses.map(\.description).joined(separator: ",") + (redis.usesTLS ? " (TLS)" : "")
    }

    /// How many replicas an entry must reach before it is applied (0 without sentinels).
    var replicasToWait: Int { sentinels?.replicasToWait ?? 0 }
}
