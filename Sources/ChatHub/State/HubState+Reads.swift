import ChatCore

/// Answers that need no order (`/users`, `/rooms`, `/who`, `/topic`, `/bans`): read from
/// the state as it is, without going through the log.
extension HubState {
    /// Everyone online, sorted without regard to case.
    package var onlineUsers: [(name: String, isOperator: Bool, away: String?)] {
        sessions.values.map { (name: $0.name, isOperator: $0.isOperator, away: $0.away?.message) }
            .sorted { ($0.name.lowercased(), $0.name) < ($1.name.lowercased(), $1.name) }
    }

    /// The rooms the session may see (private ones only to members and invitees), sorted.
    package func roomListings(for session: SessionID) -> [ServerLine.RoomListing] {
        let current = sessions[session]?.roomKey
        return rooms.values.compactMap { room -> ServerLine.RoomListing? in
            guard mayEnter(room, session) else { return nil }
            return ServerLine.RoomListing(
                name: room.name.display, isPrivate: room.isPrivate, memberCount: room.members.count,
                isCurrent: room.name.key == current)
        }
        .sorted { $0.name.lowercased() < $1.name.lowercased() }
    }

    /// The `/who` lines for the session's room.
    package func memberLines(for session: SessionID) -> [String] {
        guard let member = sessions[session], let room = rooms[member.roomKey] else { return [] }
        let members = room.members.compactMap { id in
            sessions[id].map { (name: $0.name, isOwner: $0.emailKey == room.ownerKey, away: $0.away?.message) }
        }
        .sorted { ($0.name.lowercased(), $0.name) < ($1.name.lowercased(), $1.name) }
        return ServerLine.memberList(room: room.name.display, members: members, caller: member.name)
    }

    /// The `/topic` line for the session's room.
    package func topicLine(for session: SessionID) -> String? {
        guard let member = sessions[session], let room = rooms[member.roomKey] else { return nil }
        return room.topic.map { ServerLine.topic($0, of: room.name.display) } ?? ServerLine.noTopic(room.name.display)
    }

    /// The active bans with their minutes left, for an operator.
    package func banList(
        for session: SessionID, at now: LogTime
    ) -> Result<[(target: String, minutesLeft: Int)], UserError> {
        guard sessions[session]?.isOperator == true else { return .failure(.operatorOnly("/bans")) }
        let list = bans.filter { now < $0.value }.map { target, until in
            (target: target, minutesLeft: Int((until.milliseconds - now.milliseconds + 59_999) / 60_000))
        }
        return .success(list.sorted { $0.target < $1.target })
    }

    /// The entries `/bans` lists (each ban covers an e-mail address and an IP address).
    package func activeBanCount(at now: LogTime) -> Int {
        bans.values.count { now < $0 }
    }

    /// The online user's name as they spell it.
    package func onlineName(_ name: String) -> String? {
        member(named: name)?.1.name
    }
}
