package typealias SessionID = UInt64
package typealias RoomID = UInt64
/// A node's number in a cluster (0 for a node on its own): the top bits of its sessions' ids.
package typealias NodeNumber = UInt64

/// Where a session lives: its id, and the event loop shard that delivers to it.
package struct SessionAddress: Codable, Hashable, Sendable {
    package var id: SessionID
    package var shard: Int

    package init(id: SessionID, shard: Int) {
        self.id = id
        self.shard = shard
    }
}

/// Session ids are unique across a cluster: a node numbers its sessions from
/// `node << nodeShift`, so the node that holds a session is read off its id, and a replica
/// executes only the effects for its own sessions without a lookup.
package enum SessionIDSpace {
    /// 2^40 sessions per node run, 2^24 node numbers.
    static let nodeShift: UInt64 = 40
    package static let maximumNode: NodeNumber = (1 << 24) - 1

    static func node(of id: SessionID) -> NodeNumber { id >> nodeShift }

    /// The first id of a node's sessions.
    static func firstID(of node: NodeNumber) -> SessionID {
        precondition(node <= maximumNode, "node number out of range")
        return node << nodeShift | 1
    }
}
