/// A user who is online, as the hub knows them.
struct Member: Sendable {
    var name: String
    var address: SessionAddress
    var roomKey: String
    var emailKey: String
    var ip: String
    var isOperator: Bool

    var shard: Int { address.shard }
}
