/// An event worth a line in the server log, told to the node of the session that caused it.
package enum HubNote: Sendable, Equatable {
    case roomCreated(String, isPrivate: Bool)
    case kicked(user: String, room: String)
    case banned(user: String, emailKey: String, ip: String, minutes: Int)
    case unbanned(String)
    case wall(String)
}
