typealias SessionID = UInt64
typealias RoomID = UInt64

/// Where a session lives: its id, and the event loop shard that delivers to it.
struct SessionAddress: Codable, Hashable, Sendable {
    var id: SessionID
    var shard: Int
}
