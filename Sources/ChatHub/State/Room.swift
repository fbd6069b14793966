import ChatCore

package struct Room: Codable, Sendable {
    let name: RoomName
    let id: RoomID
    let isPrivate: Bool
    var members: RoomMembers = []
    /// How many members each loop shard has, so a line goes only to shards that need it.
    var membersPerShard: [Int]
    /// The e-mail key of the user who created it: its owner under any name, present or
    /// not (`nil` for `#general`).
    var ownerKey: String?
    /// Since when nobody is in it (a room is kept empty for `ROOM_KEEP_EMPTY_DAYS`).
    var emptySince: LogTime?
    var topic: String?
    /// Who may enter a private room, by e-mail key: its creator and everyone invited,
    /// until kicked. Keyed by address, not session, so an invitation survives the
    /// invitee's reconnect and never passes to someone who later takes their name.
    var allowed: Set<String> = []
    var history: RoomHistory<HistoryLine>

    init(name: RoomName, id: RoomID, isPrivate: Bool, shardCount: Int, historySize: Int) {
        self.name = name
        self.id = id
        self.isPrivate = isPrivate
        self.membersPerShard = Array(repeating: 0, count: shardCount)
        self.history = RoomHistory(capacity: historySize)
    }

    /// The shards with at least one member.
    var shards: ShardSet {
        var set: ShardSet = 0
        for (index, count) in membersPerShard.enumerated() where count > 0 { set |= 1 << ShardSet(index) }
        return set
    }
}
