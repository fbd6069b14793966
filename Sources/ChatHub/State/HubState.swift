import ChatCore
import NIOCore

/// All shared chat state (who is online, IP slots, rooms, owners, invitations, topics,
/// history, bans, OTP throttles), changed only by applying ``HubCommand``s in order.
///
/// ``apply(_:at:into:)`` is pure: it reads no clock (time is the command's log time), takes
/// no lock and does no I/O; what the command causes comes back as ``HubEffect`` values. The
/// same commands at the same times in the same order give the same state and effects on
/// any machine.
package struct HubState: Codable, Sendable {
    /// The limits the state decides with. Replicas must decide alike, so a cluster lets in
    /// only nodes whose configuration is this one (``SettingsFingerprint``, derived from it
    /// field by field).
    package struct Configuration: Codable, Equatable, Sendable {
        /// Event loop shards (``LocalLog`` sets it to its number of loops).
        package var shardCount: Int
        package var historySize: Int
        package var maxConnectionsPerIP: Int
        package var maxConnections: Int
        package var connectionsPerIPPerMinute: Int
        package var codeRequests: CodeRequestThrottle.Limits
        /// `PRESENCE_NOTICE_MAX_MEMBERS`: in a room with more members than this (counting
        /// the one who comes or goes), joins and leaves are not announced.
        package var presenceNoticeMaxMembers: Int
        /// `NICK_CHANGES_PER_MINUTE`: `/nick` changes one account may make in a minute.
        package var renamesPerMinute: Int
        /// `ROOM_KEEP_EMPTY_DAYS`: how long a room other than `#general` is kept once
        /// empty (0: it goes with its last member).
        package var roomKeepEmptyDays: Int
        /// `ROOMS_MAX`: rooms in all, empty ones and `#general` included.
        package var maxRooms: Int
        /// `ROOMS_PER_OWNER`: rooms one e-mail address may own.
        package var roomsPerOwner: Int
        /// `RESUME_TOKEN_DAYS`: how long a resume token stays valid.
        package var resumeTokenDays: Int

        package init(
            shardCount: Int = 1, historySize: Int, maxConnectionsPerIP: Int, maxConnections: Int = .max,
            connectionsPerIPPerMinute: Int = .max,
            codeRequests: CodeRequestThrottle.Limits = .init(
                interval: .zero, perAddressPerHour: .max, perClientPerHour: .max, perMinute: .max),
            presenceNoticeMaxMembers: Int = .max, renamesPerMinute: Int = .max, roomKeepEmptyDays: Int = 0,
            maxRooms: Int = .max, roomsPerOwner: Int = .max, resumeTokenDays: Int = 30
        ) {
            self.shardCount = shardCount
            self.historySize = historySize
            self.maxConnectionsPerIP = maxConnectionsPerIP
            self.maxConnections = maxConnections
            self.connectionsPerIPPerMinute = connectionsPerIPPerMinute
            self.codeRequests = codeRequests
            self.presenceNoticeMaxMembers = presenceNoticeMaxMembers
            self.renamesPerMinute = renamesPerMinute
            self.roomKeepEmptyDays = roomKeepEmptyDays
            self.maxRooms = maxRooms
            self.roomsPerOwner = roomsPerOwner
            self.resumeTokenDays = resumeTokenDays
        }
    }

    /// Set once; a loaded snapshot takes the loading node's (``HubSnapshot``).
    package var configuration: Configuration
    /// Admitted connections and the IP (limit key) each holds a slot of.
    package var connections: [SessionID: String] = [:]
    package var connectionsPerIP: [String: Int] = [:]
    /// Admitted connections per node (a node on its own is node 0): `MAX_CONNECTIONS` is
    /// each node's capacity, and the nodes with connections are the ones to watch.
    package var connectionsPerNode: [NodeNumber: Int] = [:]
    /// Connections opened plus connections closed since start (for ``MemoryReclaimer``).
    package var connectionChurn: UInt64 = 0
    /// New connections per client IP per minute.
    var connectionRate: RateLimit<String>
    var codeRequests: CodeRequestThrottle
    /// `/nick` changes per account (e-mail key), so a reconnect does not reset the count.
    var renames: RateLimit<String>
    package var sessions = SessionTable()
    var sessionIDsByName: [String: SessionID] = [:]
    package var rooms: [String: Room] = [:]
    var nextRoomID: RoomID = 1
    /// Banned e-mail keys and IPs, with when each ban ends.
    var bans: [String: LogTime] = [:]
    /// Resume tokens (hashes only) and where their accounts last were.
    package var resumeTokens = ResumeTokens()
    package var isShuttingDown = false

    init(configuration: Configuration) {
        precondition((1...64).contains(configuration.shardCount), "1 to 64 shards")
        self.configuration = configuration
        self.connectionRate = RateLimit(
            limit: max(1, min(configuration.connectionsPerIPPerMinute, 1_000_000)), per: .seconds(60))
        self.codeRequests = CodeRequestThrottle(configuration.codeRequests)
        self.renames = RateLimit(limit: max(1, min(configuration.renamesPerMinute, 1_000_000)), per: .seconds(60))
        rooms[RoomName.general.key] = Room(
            name: .general, id: 0, isPrivate: false, shardCount: configuration.shardCount,
            historySize: configuration.historySize)
    }

    /// Applies one command at its log time.
    /// - Returns: what it causes, in the order it must happen.
    mutating func apply(_ command: HubCommand, at now: LogTime) -> [HubEffect] {
        var effects: [HubEffect] = []
        apply(command, at: now, into: &effects)
        return effects
    }

    /// Applies one command, appending its effects to `effects` (whose storage the caller
    /// may reuse: no allocation per command on the hot path).
    mutating func apply(_ command: HubCommand, at now: LogTime, into effects: inout [HubEffect]) {
        switch command {
        case .admit(let requester, let ip, let display):
            effects.append(.answer(requester, .admission(admit(requester.id, ip: ip, display: display, at: now))))
        case .release(let session):
            release(session, at: now, &effects)
        case .requestCode(let requester, let emailKey, let ip):
            effects.append(.answer(requester, .codeRequest(requestCode(emailKey: emailKey, ip: ip, at: now))))
        case .codeUsed(let emailKey):
            codeRequests.codeUsed(emailKey: emailKey)
        case .login(let requester, let username, let emailKey, let ip, let isOperator):
            login(requester, username: username, emailKey: emailKey, ip: ip, isOperator: isOperator, at: now, &effects)
        case .issueToken(let session, let hash):
            issueToken(session, hash: hash, at: now, &effects)
        case .revokeTokens(let session, let hash):
            revokeTokens(session, hash: hash)
        case .resume(let requester, let hash, let ip, let display, let admitted):
            let decision = resume(
                requester, hash: hash, ip: ip, display: display, admitted: admitted, at: now, &effects)
            effects.append(.answer(requester, .resume(decision)))
        case .loginResumed(let requester, let username, let emailKey, let ip, let isOperator, let roomKey):
            login(
                requester, username: username, emailKey: emailKey, ip: ip, isOperator: isOperator,
                resumingIn: roomKey, at: now, &effects)
        case .say(let session, let text, let isAction):
            say(session, text: text, isAction: isAction, at: now, &effects)
        case .join(let session, let room):
            join(session, room: room, at: now, &effects)
        case .create(let session, let room, let isPrivate):
            create(session, room: room, isPrivate: isPrivate, at: now, &effects)
        case .leave(let session):
            leave(session, at: now, &effects)
        case .invite(let session, let target):
            invite(session, target: target, &effects)
        case .kick(let session, let target):
            kick(session, target: target, at: now, &effects)
        case .setTopic(let session, let text):
            setTopic(session, text: text, &effects)
        case .privateMessage(let session, let target, let text):
            privateMessage(session, target: target, text: text, &effects)
        case .setAway(let session, let message):
            setAway(session, message: message, &effects)
        case .rename(let session, let name):
            rename(session, to: name, at: now, &effects)
        case .dropRoom(let session, let room):
            dropRoom(session, room: room, &effects)
        case .ban(let session, let target, let minutes):
            ban(session, target: target, minutes: minutes, at: now, &effects)
        case .unban(let session, let target):
            unban(session, target: target, &effects)
        case .wall(let session, let text):
            wall(session, text: text, &effects)
        case .nodeDown(let node):
            // In id order, so every replica releases them (and tells the rooms) alike.
            for session in connections.keys.filter({ SessionIDSpace.node(of: $0) == node }).sorted() {
                release(session, at: now, &effects)
                effects.append(.close(session))
            }
        case .reannounce(_, let connections):
            reannounce(connections, &effects)
        case .sweep:
            bans = bans.filter { now < $0.value }
            connectionRate.sweep(now: now)
            codeRequests.sweep(at: now)
            renames.sweep(now: now)
            resumeTokens.sweep(at: now)
            dropRoomsEmptyTooLong(at: now)
        case .shutdown:
            shutdown(&effects)
        }
    }

    // MARK: Connections

    mutating func admit(
        _ session: SessionID, ip: String, display: String, at now: LogTime
    )
        -> HubAnswer.Admission
    {
        if isShuttingDown { return .refused(line: ServerLine.shuttingDown, reason: .shuttingDown) }
        if isBanned(ip, at: now) { return .refused(line: UserError.banned.line, reason: .banned) }
        if let wait = connectionRate.attempt(ip, now: now) {
            return .refused(
                line: UserError.connectingTooFast(retryAfterSeconds: wait.roundedUpSeconds).line,
                reason: .connectionRate)
        }
        let node = SessionIDSpace.node(of: session)
        guard connectionsPerNode[node, default: 0] < configuration.maxConnections else {
            return .refused(line: UserError.serverFull.line, reason: .serverFull)
        }
        let held = connectionsPerIP[ip, default: 0]
        guard held < configuration.maxConnectionsPerIP else {
            let line = UserError.ipLimitReached(display).line
            if holdsResumableSlot(ip) { return .refusedUnlessResumed(line: line) }
            return .refused(line: line, reason: .ipLimit)
        }
        connectionsPerIP[ip] = held + 1
        connectionsPerNode[node, default: 0] += 1
        connections[session] = ip
        connectionChurn += 1
        return .admitted
    }

    /// Takes the user offline (leaving their room, freeing the name; their invitations
    /// stay with their e-mail address) and gives the IP slot back. A session that was never
    /// admitted or is already released changes nothing.
    mutating func release(_ session: SessionID, at now: LogTime, _ effects: inout [HubEffect]) {
        if let member = sessions[session] {
            resumeTokens.left(member.emailKey, as: member.name, from: member.roomKey)
            leaveRoom(session, notice: ServerLine.leftRoom(member.name), at: now, &effects)
            sessions[session] = nil
            sessionIDsByName[member.key] = nil
        }
        guard let ip = connections.removeValue(forKey: session) else { return }
        let held = connectionsPerIP[ip, default: 0]
        connectionsPerIP[ip] = held > 1 ? held - 1 : nil
        let node = SessionIDSpace.node(of: session)
        let onNode = connectionsPerNode[node, default: 0]
        connectionsPerNode[node] = onNode > 1 ? onNode - 1 : nil
        connectionChurn += 1
        if isShuttingDown && connections.isEmpty { effects.append(.allConnectionsClosed) }
    }

    // MARK: Logging in

    private mutating func requestCode(
        emailKey: String, ip: String, at now: LogTime
    )
        -> HubAnswer.CodeRequestDecision
    {
        if isBanned(emailKey, at: now) { return .banned }
        if let wait = codeRequests.attempt(emailKey: emailKey, client: ip, at: now) {
            return .throttled(.tooManyCodes(retryAfterSeconds: wait.roundedUpSeconds))
        }
        return .allowed
    }

    /// - Parameter roomKey: a resumed account: welcomed back, into this room when it still
    ///   exists and may be entered.
    private mutating func login(
        _ requester: SessionAddress, username: String, emailKey: String, ip: String, isOperator: Bool,
        resumingIn roomKey: String? = nil, at now: LogTime, _ effects: inout [HubEffect]
    ) {
        if isBanned(emailKey, at: now) || isBanned(ip, at: now) {
            return effects.append(.answer(requester, .login(.failure(.banned))))
        }
        // A connection released before its claim was ordered does not come online.
        guard connections[requester.id] != nil else { return }
        let key = username.lowercased()
        guard sessionIDsByName[key] == nil else {
            return effects.append(.answer(requester, .login(.failure(.usernameTaken(username)))))
        }
        sessionIDsByName[key] = requester.id
        sessions[requester.id] = Member(
            name: username, key: key, address: requester, roomKey: RoomName.general.key, emailKey: emailKey, ip: ip,
            isOperator: isOperator)
        effects.append(.answer(requester, .login(.success(username))))
        guard let roomKey else {
            let welcome = ServerLine.loggedIn(username: username, room: RoomName.general.display)
            return enter(requester.id, into: .general, firstLines: welcome.map(Self.encode), at: now, &effects)
        }
        var room = RoomName.general
        if let kept = rooms[roomKey], mayEnter(kept, requester.id) { room = kept.name }
        let welcome = ServerLine.welcomedBack(username: username, room: room.display)
        enter(requester.id, into: room, firstLines: welcome.map(Self.encode), at: now, &effects)
    }

    // MARK: Chatting

    private mutating func say(
        _ session: SessionID, text: String, isAction: Bool, at now: LogTime, _ effects: inout [HubEffect]
    ) {
        guard let member = sessions[session], let index = rooms.index(forKey: member.roomKey) else { return }
        if member.away != nil { setAway(session, message: nil, &effects) }
        let line = Self.encode(
            isAction ? ServerLine.action(by: member.name, text) : ServerLine.chat(from: member.name, text))
        let sender = member.key
        // In place, through the index: no copy of the room and one hash lookup.
        rooms.values[index].history.append(HistoryLine(line: line, sender: sender), at: now)
        effects.append(.room(rooms.values[index].id, line, from: sender, shards: rooms.values[index].shards))
    }

    private mutating func privateMessage(
        _ session: SessionID, target: String, text: String, _ effects: inout [HubEffect]
    ) {
        guard let sender = sessions[session] else { return }
        guard let (targetID, recipient) = member(named: target) else {
            return reply(to: sender, .userNotOnline(target), &effects)
        }
        guard targetID != session else { return reply(to: sender, .messageToSelf, &effects) }
        if sender.away != nil { setAway(session, message: nil, &effects) }
        // The sender's echo first: the recipient may answer at once, and the answer must
        // not arrive before the echo.
        effects.append(.lines(sender.address, [Self.encode(ServerLine.privateMessageEcho(to: recipient.name, text))]))
        effects.append(
            .privateMessage(
                recipient.address, Self.encode(ServerLine.privateMessage(from: sender.name, text)),
                from: sender.key))
        if let away = recipient.away, !away.told.contains(sender.key) {
            sessions[targetID]?.away?.told.insert(sender.key)
            effects.append(.lines(sender.address, [Self.encode(ServerLine.away(recipient.name, away.message))]))
        }
    }

    /// Marks the user away with `message`, or back (`nil`), and tells them.
    private mutating func setAway(_ session: SessionID, message: String?, _ effects: inout [HubEffect]) {
        guard let member = sessions[session] else { return }
        sessions[session]?.away = message.map { Member.Away(message: $0) }
        let line = message.map(ServerLine.nowAway) ?? ServerLine.back
        effects.append(.lines(member.address, [Self.encode(line)]))
    }

    // MARK: Operators

    private mutating func ban(
        _ session: SessionID, target: String, minutes: Int, at now: LogTime, _ effects: inout [HubEffect]
    ) {
        guard let banner = sessions[session] else { return }
        guard banner.isOperator else { return reply(to: banner, .operatorOnly("/ban"), &effects) }
        guard let (targetID, victim) = member(named: target) else {
            return reply(to: banner, .userNotOnline(target), &effects)
        }
        guard targetID != session else { return reply(to: banner, .notToYourself, &effects) }
        let until = now + .seconds(minutes * 60)
        bans[victim.emailKey] = until
        bans[victim.ip] = until
        // A ban ends every way back in; lifting it does not bring the tokens back.
        resumeTokens.revokeAll(of: victim.emailKey)
        // The confirmation first: it must reach the operator before the room's notice
        // that the user left.
        effects.append(.lines(banner.address, [Self.encode(ServerLine.banned(victim.name, minutes: minutes))]))
        effects.append(
            .answer(
                banner.address,
                .note(.banned(user: victim.name, emailKey: victim.emailKey, ip: victim.ip, minutes: minutes))))
        effects.append(
            .disconnect(victim.address, [Self.encode(ServerLine.youWereBanned(by: banner.name, minutes: minutes))]))
    }

    private mutating func unban(_ session: SessionID, target: String, _ effects: inout [HubEffect]) {
        guard let member = sessions[session] else { return }
        guard member.isOperator else { return reply(to: member, .operatorOnly("/unban"), &effects) }
        guard bans.removeValue(forKey: target.lowercased()) != nil else {
            return reply(to: member, .noBan(target), &effects)
        }
        effects.append(.answer(member.address, .note(.unbanned(target))))
        effects.append(.lines(member.address, [Self.encode(ServerLine.banLifted(target))]))
    }

    private mutating func wall(_ session: SessionID, text: String, _ effects: inout [HubEffect]) {
        guard let member = sessions[session] else { return }
        guard member.isOperator else { return reply(to: member, .operatorOnly("/wall"), &effects) }
        effects.append(.answer(member.address, .note(.wall(text))))
        effects.append(.everyone(Self.encode(ServerLine.announcement(from: member.name, text))))
    }

    private mutating func shutdown(_ effects: inout [HubEffect]) {
        guard !isShuttingDown else { return }
        isShuttingDown = true
        effects.append(.shutdown(Self.encode(ServerLine.shuttingDown)))
        if connections.isEmpty { effects.append(.allConnectionsClosed) }
    }

    // MARK: Helpers

    func member(named name: String) -> (SessionID, Member)? {
        guard let id = sessionIDsByName[name.lowercased()], let member = sessions[id] else { return nil }
        return (id, member)
    }

    func isBanned(_ key: String, at now: LogTime) -> Bool {
        guard let until = bans[key] else { return false }
        return now < until
    }

    /// An error line for the member who sent the command.
    func reply(to member: Member, _ error: UserError, _ effects: inout [HubEffect]) {
        effects.append(.lines(member.address, [Self.encode(error.line)]))
    }

    /// Lines as they go on the wire, each with its trailing `\n`, in one exact-size buffer.
    package static func encode(_ lines: [String]) -> ByteBuffer {
        var bytes = 0
        for line in lines { bytes += line.utf8.count + 1 }
        var buffer = ByteBufferAllocator().buffer(capacity: bytes)
        for line in lines {
            buffer.writeString(line)
            buffer.writeInteger(UInt8(ascii: "\n"))
        }
        return buffer
    }

    /// Encodes a line once, into an exact-size buffer of its own, with the trailing `\n`.
    package static func encode(_ line: String) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: line.utf8.count + 1)
        buffer.writeString(line)
        buffer.writeInteger(UInt8(ascii: "\n"))
        return buffer
    }
}
