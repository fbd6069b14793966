import ChatCore

extension HubState {
    /// `/nick`: the user takes `name` in place, under the rules of a login (one name per
    /// user regardless of case) and no more often than `NICK_CHANGES_PER_MINUTE` per
    /// account. Everything that is keyed by session or e-mail address (room ownership,
    /// invitations, operator status, away) follows by itself; what other sessions hold by
    /// name (ignore lists, `/reply`, away notices already given) is moved to the new name.
    mutating func rename(_ session: SessionID, to name: String, at now: LogTime, _ effects: inout [HubEffect]) {
        guard let member = sessions[session] else { return }
        guard name != member.name else { return reply(to: member, .alreadyNamed(name), &effects) }
        let key = name.lowercased()
        // A change of case only keeps the name the user holds.
        if key != member.key, sessionIDsByName[key] != nil {
            return reply(to: member, .usernameTaken(name), &effects)
        }
        if let wait = renames.attempt(member.emailKey, now: now) {
            return reply(to: member, .renamingTooFast(retryAfterSeconds: wait.roundedUpSeconds), &effects)
        }
        sessionIDsByName[member.key] = nil
        sessionIDsByName[key] = session
        sessions[session]?.name = name
        sessions[session]?.key = key
        if key != member.key {
            // Ignoring the new name leaves out the lines sent under the old one in a replay,
            // and no one who takes the old name later is left out for them.
            for index in rooms.values.indices {
                rooms.values[index].history.updateEach { if $0.sender == member.key { $0.sender = key } }
            }
            // Ids first: changing `sessions` while walking it would copy it whole.
            let told = sessions.compactMap { $0.value.away?.told.contains(member.key) == true ? $0.key : nil }
            for id in told {
                sessions[id]?.away?.told.remove(member.key)
                sessions[id]?.away?.told.insert(key)
            }
        }
        effects.append(.answer(member.address, .renamed(from: member.name, to: name)))
        let line = Self.encode(ServerLine.renamed(from: member.name, to: name))
        if let room = rooms[member.roomKey] {
            effects.append(.room(room.id, line, from: nil, shards: room.shards))
        } else {
            effects.append(.lines(member.address, [line]))
        }
        if key != member.key { effects.append(.renamed(fromKey: member.key, to: name)) }
    }
}
