import ChatCore

/// One connection of a node as the node announces it again in a fresh hub log, after Redis
/// lost the old one: the slot it holds and, when its user is online, who they are and the
/// room they were in. Topics, invitations other than the member's own, and history are not
/// in it: they went with the log.
package struct Reannouncement: Codable, Equatable, Sendable {
    var id: SessionID
    var ip: String
    var member: Member?
    var room: RoomName?
    var roomIsPrivate = false

    /// The connection announced.
    package var sessionID: SessionID { id }
    /// Where its user's lines go, once logged in: what a refusal of a command it sent
    /// needs after the state that held it was emptied.
    package var address: SessionAddress? { member?.address }
}

extension HubState {
    /// The announcements of `node`'s connections, in id order: what this state holds of them.
    func reannouncements(of node: NodeNumber) -> [Reannouncement] {
        connections.filter { SessionIDSpace.node(of: $0.key) == node }.sorted { $0.key < $1.key }.map { id, ip in
            let member = sessions[id]
            let room = member.flatMap { rooms[$0.roomKey] }
            return Reannouncement(
                id: id, ip: ip, member: member, room: room?.name, roomIsPrivate: room?.isPrivate ?? false)
        }
    }

    /// Rebuilds a node's connections from its announcement. Each takes its slot (limits do
    /// not apply: the connection exists); its user comes online in their room without a
    /// notice, the room made again when it is the first back (its first member owns it). A
    /// name already online is not taken over: the later user is told and disconnected, and
    /// their slot goes when the connection's release comes. Idempotent per connection.
    mutating func reannounce(_ announced: [Reannouncement], _ effects: inout [HubEffect]) {
        for connection in announced where connections[connection.id] == nil {
            connections[connection.id] = connection.ip
            connectionsPerIP[connection.ip, default: 0] += 1
            connectionsPerNode[SessionIDSpace.node(of: connection.id), default: 0] += 1
            connectionChurn += 1
            guard var member = connection.member else { continue }
            guard sessionIDsByName[member.key] == nil else {
                effects.append(.disconnect(member.address, [Self.encode(ServerLine.usernameInUseElsewhere)]))
                continue
            }
            let name = connection.room ?? .general
            if rooms[name.key] == nil {
                var room = Room(
                    name: name, id: nextRoomID, isPrivate: connection.roomIsPrivate,
                    shardCount: configuration.shardCount, historySize: configuration.historySize)
                room.ownerKey = member.emailKey
                rooms[name.key] = room
                nextRoomID += 1
            }
            guard var room = rooms.removeValue(forKey: name.key) else { continue }
            if room.isPrivate { room.allowed.insert(member.emailKey) }
            room.members.insert(connection.id)
            room.membersPerShard[member.shard] += 1
            member.roomKey = name.key
            sessions[connection.id] = member
            sessionIDsByName[member.key] = connection.id
            effects.append(.enterRoom(member.address, room.id, [], history: []))
            rooms[name.key] = room
        }
    }
}
