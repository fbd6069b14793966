import ChatHub

/// The Redis keys of a cluster. The `{chat}` hash tag puts them all in one slot, so a
/// Redis Cluster would keep them on one shard.
package enum ClusterKeys {
    /// The hub log: one stream of commands.
    static let log = "{chat}:log"
    /// The channel every append is published on as it is made (``PublishedAppend``): the
    /// nodes take new entries from it, and read the log only to catch up.
    static let appended = "{chat}:appended"
    /// The counter that numbers nodes as they join.
    static let nodeCounter = "{chat}:nodes"
    /// The settings every replica must decide with, as the first live node wrote them.
    static let settings = "{chat}:settings"

    /// A random value the first node of a log sets: a node that finds it gone or changed
    /// knows Redis lost the log its state was built from.
    static let epoch = "{chat}:epoch"

    /// The latest snapshot of the state (``HubSnapshot``).
    static let snapshot = "{chat}:snapshot"
    /// Which node writes the snapshots: a lease, so one node at a time does.
    static let snapshotLease = "{chat}:snapshot-lease"

    /// Hash: how far each node has applied the log (node number → entry id), refreshed
    /// every heartbeat: the log is never trimmed past a live node.
    static let applied = "{chat}:applied"

    /// A node's heartbeat: its `NODE_ID`, expiring unless refreshed.
    static func heartbeat(of node: NodeNumber) -> String { "{chat}:node:\(node)" }

    /// A key only the node's reader writes, right after a read: its replication proves that
    /// the replicas have every entry the read returned (``RedisLog`` and `WAIT`).
    static func fence(of node: NodeNumber) -> String { "{chat}:fence:\(node)" }

    /// The only field of a log entry: its records (``LogRecord``), one per append.
    static let recordsField = "r"
    /// The record's field that holds the encoded command (before records, the entry's own).
    static let commandField = "c"
    /// The record's field that says which node's which append it is (``AppendLedger``).
    static let tagField = "i"
    /// The only field of a heartbeat's record: the node's number. A node that stops reading
    /// its own back knows it has gone deaf.
    static let beatField = "b"
}
