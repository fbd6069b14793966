import ChatCore
import NIOCore

/// Rooms: moving between them, creating them, inviting, kicking, topics.
extension HubState {
    /// Whether the session may enter (or see) the room: any public room; a private one
    /// when its address was let in.
    func mayEnter(_ room: Room, _ session: SessionID) -> Bool {
        guard room.isPrivate else { return true }
        guard let emailKey = sessions[session]?.emailKey else { return false }
        return room.allowed.contains(emailKey)
    }

    /// Whether the session's user owns the room (under any name: owners are addresses).
    func isOwner(_ session: SessionID, of room: Room) -> Bool {
        guard let ownerKey = room.ownerKey else { return false }
        return sessions[session]?.emailKey == ownerKey
    }

    /// Why the member may not create another room, if they may not.
    private func creationRefused(for member: Member) -> UserError? {
        guard rooms.count < configuration.maxRooms else { return .tooManyRooms }
        let owned = rooms.values.count { $0.ownerKey == member.emailKey }
        guard owned < configuration.roomsPerOwner else { return .tooManyOwnedRooms(configuration.roomsPerOwner) }
        return nil
    }

    mutating func join(_ session: SessionID, room name: RoomName, at now: LogTime, _ effects: inout [HubEffect]) {
        guard let member = sessions[session] else { return }
        if let room = rooms[name.key] {
            if member.roomKey == room.name.key { return reply(to: member, .alreadyInRoom(room.name.display), &effects) }
            if !mayEnter(room, session) { return reply(to: member, .privateRoom(room.name.display), &effects) }
        } else if let refusal = creationRefused(for: member) {
            return reply(to: member, refusal, &effects)
        }
        move(session, to: name, isPrivate: false, at: now, &effects) { _, joined in [ServerLine.youJoined(joined)] }
    }

    mutating func create(
        _ session: SessionID, room name: RoomName, isPrivate: Bool, at now: LogTime, _ effects: inout [HubEffect]
    ) {
        guard let member = sessions[session] else { return }
        if let existing = rooms[name.key] {
            // A private room's existence is not revealed to those who may not see it.
            if !mayEnter(existing, session) { return reply(to: member, .privateRoom(existing.name.display), &effects) }
            return reply(to: member, .roomExists(existing.name.display), &effects)
        }
        if let refusal = creationRefused(for: member) { return reply(to: member, refusal, &effects) }
        move(session, to: name, isPrivate: isPrivate, at: now, &effects) { _, joined in
            [ServerLine.roomCreated(joined, isPrivate: isPrivate), ServerLine.youJoined(joined)]
        }
        effects.append(.answer(member.address, .note(.roomCreated(name.display, isPrivate: isPrivate))))
    }

    mutating func leave(_ session: SessionID, at now: LogTime, _ effects: inout [HubEffect]) {
        guard let member = sessions[session] else { return }
        guard member.roomKey != RoomName.general.key else { return reply(to: member, .alreadyInDefaultRoom, &effects) }
        move(session, to: .general, isPrivate: false, at: now, &effects) { previous, general in
            [ServerLine.returnedToDefault(from: previous, defaultRoom: general)]
        }
    }

    mutating func invite(_ session: SessionID, target: String, _ effects: inout [HubEffect]) {
        guard let member = sessions[session] else { return }
        guard let room = rooms[member.roomKey], room.isPrivate else {
            return reply(to: member, .notInPrivateRoom, &effects)
        }
        guard let (targetID, invitee) = self.member(named: target) else {
            return reply(to: member, .userNotOnline(target), &effects)
        }
        guard targetID != session else { return reply(to: member, .notToYourself, &effects) }
        guard invitee.roomKey != room.name.key else {
            return reply(to: member, .alreadyMember(invitee.name, room: room.name.display), &effects)
        }
        rooms[room.name.key]?.allowed.insert(invitee.emailKey)
        // The confirmation first: the invitee may join at once, and the inviter must not
        // hear of it before their own confirmation.
        effects.append(
            .lines(member.address, [Self.encode(ServerLine.youInvited(invitee.name, to: room.name.display))]))
        effects.append(
            .lines(invitee.address, [Self.encode(ServerLine.invitation(from: member.name, to: room.name.display))]))
    }

    /// Sends `target` from a room back to `#general`: the owner from their own room, an
    /// operator from any room. Revokes the target's invitation to it.
    mutating func kick(_ session: SessionID, target: String, at now: LogTime, _ effects: inout [HubEffect]) {
        guard let kicker = sessions[session] else { return }
        guard let (targetID, victim) = member(named: target), let room = rooms[victim.roomKey] else {
            return reply(to: kicker, .userNotOnline(target), &effects)
        }
        guard targetID != session else { return reply(to: kicker, .notToYourself, &effects) }
        if !kicker.isOperator {
            guard let current = rooms[kicker.roomKey], isOwner(session, of: current) else {
                return reply(to: kicker, .ownerOnly(rooms[kicker.roomKey]?.name.display ?? kicker.roomKey), &effects)
            }
            guard victim.roomKey == kicker.roomKey else {
                return reply(to: kicker, .notInYourRoom(victim.name, room: current.name.display), &effects)
            }
        }
        guard room.name != .general else { return reply(to: kicker, .cannotKickFromDefaultRoom, &effects) }
        rooms[room.name.key]?.allowed.remove(victim.emailKey)
        move(
            targetID, to: .general, isPrivate: false, at: now, &effects,
            departureNotice: ServerLine.wasKicked(victim.name, by: kicker.name)
        ) { previous, general in
            [ServerLine.youWereKicked(from: previous, by: kicker.name), ServerLine.youJoined(general)]
        }
        effects.append(.answer(kicker.address, .note(.kicked(user: victim.name, room: room.name.display))))
        // An operator kicking from another room does not see the room's notice: tell them.
        if kicker.roomKey != room.name.key {
            effects.append(.lines(kicker.address, [Self.encode(ServerLine.wasKicked(victim.name, by: kicker.name))]))
        }
    }

    mutating func setTopic(_ session: SessionID, text: String, _ effects: inout [HubEffect]) {
        guard let member = sessions[session], let room = rooms[member.roomKey] else { return }
        guard isOwner(session, of: room) || member.isOperator else {
            return reply(to: member, .ownerOnly(room.name.display), &effects)
        }
        rooms[room.name.key]?.topic = text
        effects.append(
            .room(room.id, Self.encode(ServerLine.topicSet(by: member.name, to: text)), from: nil, shards: room.shards))
    }

    // MARK: Moving

    /// Moves a member from their room to `name` (created when missing, with them as
    /// owner), telling both rooms.
    /// - Parameters:
    ///   - departureNotice: what the old room is told (default: `... left the room`).
    ///   - firstLines: the mover's own lines, from the old and new rooms' names; the new
    ///     room's topic and history follow them.
    mutating func move(
        _ session: SessionID, to name: RoomName, isPrivate: Bool, at now: LogTime, _ effects: inout [HubEffect],
        departureNotice: String? = nil,
        firstLines: (_ previousRoom: String, _ newRoom: String) -> [String]
    ) {
        guard let member = sessions[session] else { return }
        let previous = rooms[member.roomKey]?.name.display ?? member.roomKey
        leaveRoom(
            session, notice: departureNotice ?? ServerLine.leftRoom(member.name),
            alwaysAnnounce: departureNotice != nil, at: now,
            &effects)
        if rooms[name.key] == nil {
            var room = Room(
                name: name, id: nextRoomID, isPrivate: isPrivate, shardCount: configuration.shardCount,
                historySize: configuration.historySize)
            room.ownerKey = member.emailKey
            if isPrivate { room.allowed.insert(member.emailKey) }
            rooms[name.key] = room
            nextRoomID += 1
        }
        let newRoom = rooms[name.key]!.name.display
        enter(session, into: name, firstLines: firstLines(previous, newRoom).map(Self.encode), at: now, &effects)
    }

    /// Adds the session to an existing room: the session receives `firstLines`, the topic
    /// and the history; the other members the join notice.
    mutating func enter(
        _ session: SessionID, into name: RoomName, firstLines: [ByteBuffer], at now: LogTime,
        _ effects: inout [HubEffect]
    ) {
        guard var member = sessions[session], var room = rooms.removeValue(forKey: name.key) else { return }
        let othersShards = room.shards
        room.members.insert(session)
        room.membersPerShard[member.shard] += 1
        member.roomKey = name.key
        sessions[session] = member

        room.emptySince = nil
        var lines = firstLines
        if let topic = room.topic {
            lines.append(Self.encode(ServerLine.topic(topic, of: room.name.display)))
        }
        effects.append(.enterRoom(member.address, room.id, lines, history: room.history.recent(at: now)))
        // A big room gains nothing from a line per arrival (and every arrival would cost a
        // write to every member): above the threshold, arrivals are quiet.
        if othersShards != 0, room.members.count <= configuration.presenceNoticeMaxMembers {
            effects.append(
                .presence(
                    room.id, Self.encode(ServerLine.joinedRoom(member.name)), except: session, shards: room.shards))
        }
        rooms[name.key] = room
    }

    /// Removes the session from its room and tells the others with `notice`. A room other
    /// than `#general` that is left empty is kept, with its owner, invitations, topic and
    /// history, for `ROOM_KEEP_EMPTY_DAYS` (0: it goes, and its invitations with it).
    /// - Parameter alwaysAnnounce: tell the room even when it is over
    ///   `PRESENCE_NOTICE_MAX_MEMBERS` (a kick is moderation, not presence).
    mutating func leaveRoom(
        _ session: SessionID, notice: String, alwaysAnnounce: Bool = false, at now: LogTime,
        _ effects: inout [HubEffect]
    ) {
        guard let member = sessions[session], var room = rooms.removeValue(forKey: member.roomKey) else { return }
        let announce = alwaysAnnounce || room.members.count <= configuration.presenceNoticeMaxMembers
        if room.members.remove(session) { room.membersPerShard[member.shard] -= 1 }
        effects.append(.exitRoom(member.address, room.id))
        if room.members.isEmpty && room.name != .general {
            guard configuration.roomKeepEmptyDays > 0 else { return }
            room.emptySince = now
            rooms[member.roomKey] = room
            return
        }
        // While the server shuts down everyone leaves at once and the shutdown notice must
        // stay each user's last line: the room is not told.
        if !isShuttingDown && !room.members.isEmpty && announce {
            effects.append(.presence(room.id, Self.encode(notice), except: session, shards: room.shards))
        }
        rooms[member.roomKey] = room
    }

    /// `/drop`: the owner (or an operator) deletes an empty room, its invitations, topic and
    /// history with it.
    mutating func dropRoom(_ session: SessionID, room name: RoomName, _ effects: inout [HubEffect]) {
        guard let member = sessions[session] else { return }
        guard name != .general else { return reply(to: member, .cannotDropDefaultRoom, &effects) }
        // A private room's existence is not revealed to those who may not see it.
        guard let room = rooms[name.key], mayEnter(room, session) || member.isOperator else {
            return reply(to: member, .noSuchRoom(name.display), &effects)
        }
        guard isOwner(session, of: room) || member.isOperator else {
            return reply(to: member, .ownerOnly(room.name.display), &effects)
        }
        guard room.members.isEmpty else { return reply(to: member, .roomNotEmpty(room.name.display), &effects) }
        rooms[name.key] = nil
        effects.append(.lines(member.address, [Self.encode(ServerLine.roomDropped(room.name.display))]))
    }

    /// The sweep: rooms empty for `ROOM_KEEP_EMPTY_DAYS` go.
    mutating func dropRoomsEmptyTooLong(at now: LogTime) {
        let keep = Int64(configuration.roomKeepEmptyDays) * 86_400_000
        let expired = rooms.filter { $0.value.emptySince.map { now.milliseconds - $0.milliseconds >= keep } == true }
        for key in expired.keys { rooms[key] = nil }
    }
}
