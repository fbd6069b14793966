/// A user who is online, as the hub knows them.
struct Member: Codable, Equatable, Sendable {
    var name: String
    /// The name lower-cased: the key of the name index and of ignore lists, kept so no
    /// line has to lower-case it again.
    var key: String
    var address: SessionAddress
    var roomKey: String
    var emailKey: String
    var ip: String
    var isOperator: Bool

    var shard: Int { address.shard }
}
