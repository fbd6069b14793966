/// A user who is online, as the hub knows them.
package struct Member: Codable, Equatable, Sendable {
    var name: String
    /// The name lower-cased: the key of the name index and of ignore lists, kept so no
    /// line has to lower-case it again.
    var key: String
    package var address: SessionAddress
    var roomKey: String
    var emailKey: String
    var ip: String
    var isOperator: Bool
    /// The away message while the user is away, and who was told it since.
    var away: Away?

    struct Away: Codable, Equatable, Sendable {
        var message: String
        /// The keys of the users already told (once per sender until the user is back).
        var told: Set<String> = []
    }

    var shard: Int { address.shard }
}
