import ChatCore
import NIOConcurrencyHelpers
import NIOCore

/// The one owner of the shared state: who is online, which IP holds how many connections,
/// the rooms with their members, owners and invitations, and the bans.
///
/// Every change is a short critical section that decides *who receives what* and queues
/// the already encoded lines on the recipients' loop shards; the writes happen later on
/// those loops, never under the lock. Queuing under the lock is what gives each room a
/// total order: every shard sees a room's events in the order the lock was taken.
final class ChatHub: Sendable {
    struct Limits: Sendable {
        var maxConnectionsPerIP: Int
        var historySize: Int
        var maxConnections = Int.max
        var connectionsPerIPPerMinute = Int.max
        var maxSendQueueBytes = Int.max
    }

    /// The longest topic, in characters.
    static let maximumTopicLength = 256

    let shards: [LoopShard]
    private let limits: Limits
    private let state: NIOLockedValueBox<HubState>
    private let nextSessionID = NIOLockedValueBox<UInt64>(1)

    init(eventLoops: [any EventLoop], limits: Limits) {
        precondition(!eventLoops.isEmpty && eventLoops.count <= 64, "1 to 64 event loops")
        self.shards = eventLoops.enumerated().map {
            LoopShard(index: $0.offset, eventLoop: $0.element, maxSendQueueBytes: limits.maxSendQueueBytes)
        }
        self.limits = limits
        var state = HubState(
            shardCount: eventLoops.count, historySize: limits.historySize,
            connectionsPerIPPerMinute: limits.connectionsPerIPPerMinute)
        state.rooms[RoomName.general.key] = Room(
            name: .general,
            id: 0,
            isPrivate: false,
            shardCount: eventLoops.count,
            historySize: limits.historySize
        )
        self.state = NIOLockedValueBox(state)
    }

    /// The shard of `eventLoop`, or `nil` when the hub has none for it (a connection on a
    /// loop of another group: a wiring mistake). Never another loop's shard: its state is
    /// confined to its own loop, and touching it from this one would be a data race.
    func shard(for eventLoop: any EventLoop) -> LoopShard? {
        shards.first { $0.eventLoop === eventLoop }
    }

    func makeSessionID() -> SessionID {
        nextSessionID.withLockedValue { id in
            defer { id += 1 }
            return id
        }
    }

    /// Runs `body` under the lock with an outbox, then schedules the shards it posted to.
    private func withState<T>(_ body: (inout HubState, inout Outbox) -> T) -> T {
        var outbox = Outbox(shards: shards)
        let result = state.withLockedValue { state in body(&state, &outbox) }
        outbox.wakeShards()
        return result
    }

    // MARK: Connections

    enum Admission: Equatable {
        case admitted
        case ipLimitReached
        case banned
        case serverFull
        case connectingTooFast(retryAfter: Duration)
        case shuttingDown
    }

    /// Takes one of the IP's connection slots (`ip` is the client's limit key).
    func openConnection(ip: String) -> Admission {
        let now = ContinuousClock.now
        return state.withLockedValue { state in
            if state.isShuttingDown { return .shuttingDown }
            if state.isBanned(ip, now: now) { return .banned }
            if let wait = state.connectionRate.attempt(ip, now: now) { return .connectingTooFast(retryAfter: wait) }
            guard state.connectionCount < limits.maxConnections else { return .serverFull }
            let held = state.connectionsPerIP[ip, default: 0]
            guard held < limits.maxConnectionsPerIP else { return .ipLimitReached }
            state.connectionsPerIP[ip] = held + 1
            state.connectionCount += 1
            state.connectionChurn += 1
            return .admitted
        }
    }

    /// Gives the slot back, the moment the connection ends.
    func closeConnection(ip: String) {
        let allClosed: EventLoopPromise<Void>? = state.withLockedValue { state in
            let held = state.connectionsPerIP[ip, default: 0]
            state.connectionsPerIP[ip] = held > 1 ? held - 1 : nil
            state.connectionCount -= 1
            state.connectionChurn += 1
            guard state.isShuttingDown, state.connectionCount == 0 else { return nil }
            defer { state.allClosed = nil }
            return state.allClosed
        }
        allClosed?.succeed()
    }

    /// Connections opened plus connections closed since start.
    var connectionChurn: UInt64 { state.withLockedValue { $0.connectionChurn } }

    func isBanned(email: EmailAddress) -> Bool {
        let now = ContinuousClock.now
        return state.withLockedValue { $0.isBanned(email.key, now: now) }
    }

    // MARK: Sessions

    /// Who is logging in.
    struct Identity {
        var username: String
        var email: EmailAddress
        var ip: String
        var isOperator: Bool
    }

    /// Puts a verified user online and into `#general`.
    /// - Returns: the username, or why it can't be had.
    func login(_ session: SessionID, as identity: Identity, shard: Int) -> Result<String, UserError> {
        let now = ContinuousClock.now
        return withState { state, outbox in
            if state.isBanned(identity.email.key, now: now) || state.isBanned(identity.ip, now: now) {
                return .failure(.banned)
            }
            let key = identity.username.lowercased()
            guard state.sessionIDsByName[key] == nil else { return .failure(.usernameTaken(identity.username)) }
            state.sessionIDsByName[key] = session
            state.sessions[session] = Member(
                name: identity.username, shard: shard, roomKey: RoomName.general.key,
                emailKey: identity.email.key, ip: identity.ip, isOperator: identity.isOperator)
            let welcome = ServerLine.loggedIn(username: identity.username, room: RoomName.general.display)
            state.enter(session, into: .general, firstLines: welcome.map(Self.encode), now: now, outbox: &outbox)
            return .success(identity.username)
        }
    }

    /// Takes the user offline: leaves their room and frees the name. Their invitations
    /// stay with their e-mail address.
    func logout(_ session: SessionID) {
        withState { state, outbox in
            guard let member = state.sessions[session] else { return }
            state.leaveRoom(session, notice: ServerLine.leftRoom(member.name), outbox: &outbox)
            state.sessions[session] = nil
            state.sessionIDsByName[member.name.lowercased()] = nil
        }
    }

    /// A line from the session to its room (a chat line or an action), already encoded.
    func say(_ session: SessionID, line: ByteBuffer) {
        let now = ContinuousClock.now
        withState { state, outbox in
            guard let member = state.sessions[session] else { return }
            let sender = member.name.lowercased()
            state.rooms[member.roomKey]?.history.append(HistoryLine(line: line, sender: sender), at: now)
            guard let room = state.rooms[member.roomKey] else { return }
            outbox.post(line, to: room, from: sender)
        }
    }

    // MARK: Rooms

    /// Moves the session to a room, creating it (public, with the session as owner) when
    /// it does not exist.
    func join(_ session: SessionID, room name: RoomName) -> UserError? {
        let now = ContinuousClock.now
        return withState { state, outbox in
            guard let member = state.sessions[session] else { return nil }
            if let room = state.rooms[name.key] {
                if member.roomKey == room.name.key { return .alreadyInRoom(room.name.display) }
                if !state.mayEnter(room, session) { return .privateRoom(room.name.display) }
            }
            state.move(
                session, to: name, isPrivate: false, now: now, outbox: &outbox,
                firstLines: { _, joined in [ServerLine.youJoined(joined)] })
            return nil
        }
    }

    /// Creates a room and moves the session into it as its owner.
    func create(_ session: SessionID, room name: RoomName, isPrivate: Bool) -> UserError? {
        let now = ContinuousClock.now
        return withState { state, outbox in
            guard state.sessions[session] != nil else { return nil }
            if let existing = state.rooms[name.key] {
                // A private room's existence is not revealed to those who may not see it.
                if !state.mayEnter(existing, session) { return .privateRoom(existing.name.display) }
                return .roomExists(existing.name.display)
            }
            state.move(
                session, to: name, isPrivate: isPrivate, now: now, outbox: &outbox,
                firstLines: { _, joined in
                    [ServerLine.roomCreated(joined, isPrivate: isPrivate), ServerLine.youJoined(joined)]
                })
            return nil
        }
    }

    /// Moves the session back to `#general`.
    func leave(_ session: SessionID) -> UserError? {
        let now = ContinuousClock.now
        return withState { state, outbox in
            guard let member = state.sessions[session] else { return nil }
            guard member.roomKey != RoomName.general.key else { return .alreadyInDefaultRoom }
            state.move(
                session, to: .general, isPrivate: false, now: now, outbox: &outbox,
                firstLines: { previous, general in
                    [ServerLine.returnedToDefault(from: previous, defaultRoom: general)]
                })
            return nil
        }
    }

    /// Lets `target` into the session's private room and tells them.
    /// - Returns: the invitee's name and the room.
    func invite(_ session: SessionID, target: String) -> Result<(user: String, room: String), UserError> {
        withState { state, outbox in
            guard let member = state.sessions[session], let room = state.rooms[member.roomKey] else {
                return .failure(.notInPrivateRoom)
            }
            guard room.isPrivate else { return .failure(.notInPrivateRoom) }
            guard let (targetID, invitee) = state.member(named: target) else { return .failure(.userNotOnline(target)) }
            guard targetID != session else { return .failure(.notToYourself) }
            guard invitee.roomKey != room.name.key else {
                return .failure(.alreadyMember(invitee.name, room: room.name.display))
            }
            state.rooms[room.name.key]?.allowed.insert(invitee.emailKey)
            // The confirmation is queued first, under the lock: the invitee may join at
            // once, and the inviter must not hear of it before their own confirmation.
            let confirmation = Self.encode(ServerLine.youInvited(invitee.name, to: room.name.display))
            outbox.post(.direct(session, [confirmation]), toShard: member.shard)
            let line = Self.encode(ServerLine.invitation(from: member.name, to: room.name.display))
            outbox.post(.direct(targetID, [line]), toShard: invitee.shard)
            return .success((invitee.name, room.name.display))
        }
    }

    /// Sends `target` from a room back to `#general`: the owner from their own room, an
    /// operator from any room. Revokes the target's invitation to it.
    /// - Returns: the target's name and the room, and whether the kicker is in it.
    func kick(_ session: SessionID, target: String) -> Result<(user: String, room: String, present: Bool), UserError> {
        let now = ContinuousClock.now
        return withState { state, outbox in
            guard let kicker = state.sessions[session] else { return .failure(.userNotOnline(target)) }
            guard let (targetID, victim) = state.member(named: target) else { return .failure(.userNotOnline(target)) }
            guard targetID != session else { return .failure(.notToYourself) }
            guard let room = state.rooms[victim.roomKey] else { return .failure(.userNotOnline(target)) }
            if !kicker.isOperator {
                guard let current = state.rooms[kicker.roomKey], current.owner == session else {
                    return .failure(.ownerOnly(state.rooms[kicker.roomKey]?.name.display ?? kicker.roomKey))
                }
                guard victim.roomKey == kicker.roomKey else {
                    return .failure(.notInYourRoom(victim.name, room: current.name.display))
                }
            }
            guard room.name != .general else { return .failure(.cannotKickFromDefaultRoom) }
            state.rooms[room.name.key]?.allowed.remove(victim.emailKey)
            state.move(
                targetID, to: .general, isPrivate: false, now: now, outbox: &outbox,
                departureNotice: ServerLine.wasKicked(victim.name, by: kicker.name),
                firstLines: { previous, general in
                    [ServerLine.youWereKicked(from: previous, by: kicker.name), ServerLine.youJoined(general)]
                })
            return .success((victim.name, room.name.display, kicker.roomKey == room.name.key))
        }
    }

    /// Reads the topic of the session's room, or sets it (owner or operator).
    /// - Returns: the line to show the caller, if any.
    func topic(_ session: SessionID, set text: String?) -> Result<String?, UserError> {
        withState { state, outbox in
            guard let member = state.sessions[session], let room = state.rooms[member.roomKey] else {
                return .success(nil)
            }
            guard let text else {
                return .success(
                    room.topic.map { ServerLine.topic($0, of: room.name.display) }
                        ?? ServerLine.noTopic(room.name.display))
            }
            guard room.owner == session || member.isOperator else { return .failure(.ownerOnly(room.name.display)) }
            state.rooms[room.name.key]?.topic = text
            outbox.post(Self.encode(ServerLine.topicSet(by: member.name, to: text)), to: room)
            return .success(nil)
        }
    }

    /// The `/who` lines for the session's room.
    func members(of session: SessionID) -> [String] {
        let (room, members, caller) = state.withLockedValue { state -> (String, [(String, Bool)], String) in
            guard let member = state.sessions[session], let room = state.rooms[member.roomKey] else {
                return ("", [], "")
            }
            let members = room.members.compactMap { id in state.sessions[id].map { ($0.name, id == room.owner) } }
            return (room.name.display, members, member.name)
        }
        let sorted = members.sorted { ($0.0.lowercased(), $0.0) < ($1.0.lowercased(), $1.0) }
        return ServerLine.memberList(room: room, members: sorted.map { (name: $0.0, isOwner: $0.1) }, caller: caller)
    }

    // MARK: People

    /// A private message, and the sender's echo of it. Delivered on the recipient's loop,
    /// after anything the sender said before it.
    /// - Returns: why it could not be sent, or `nil`.
    func privateMessage(from session: SessionID, to target: String, text: String) -> UserError? {
        withState { state, outbox in
            guard let sender = state.sessions[session] else { return .userNotOnline(target) }
            guard let (targetID, recipient) = state.member(named: target) else { return .userNotOnline(target) }
            guard targetID != session else { return .messageToSelf }
            // The sender's echo is queued first, under the lock: the recipient may answer at
            // once, and the answer must not arrive before the echo.
            let echo = Self.encode(ServerLine.privateMessageEcho(to: recipient.name, text))
            outbox.post(.direct(session, [echo]), toShard: sender.shard)
            let line = Self.encode(ServerLine.privateMessage(from: sender.name, text))
            outbox.post(.privateMessage(targetID, line, from: sender.name.lowercased()), toShard: recipient.shard)
            return nil
        }
    }

    /// The online user's name as they spell it.
    func onlineName(_ name: String) -> String? {
        state.withLockedValue { $0.member(named: name)?.1.name }
    }

    /// Everyone online, sorted without regard to case.
    func onlineUsers() -> [(name: String, isOperator: Bool)] {
        let users = state.withLockedValue { state in
            state.sessions.values.map { (name: $0.name, isOperator: $0.isOperator) }
        }
        return users.sorted { ($0.name.lowercased(), $0.name) < ($1.name.lowercased(), $1.name) }
    }

    /// The rooms the session may see (private ones only to members and invitees), sorted.
    func roomListings(for session: SessionID) -> [ServerLine.RoomListing] {
        let listings = state.withLockedValue { state -> [ServerLine.RoomListing] in
            let current = state.sessions[session]?.roomKey
            return state.rooms.values.compactMap { room in
                guard state.mayEnter(room, session) else { return nil }
                return ServerLine.RoomListing(
                    name: room.name.display,
                    isPrivate: room.isPrivate,
                    memberCount: room.members.count,
                    isCurrent: room.name.key == current
                )
            }
        }
        return listings.sorted { $0.name.lowercased() < $1.name.lowercased() }
    }

    // MARK: Operators

    /// Refuses the target's e-mail address and IP for `duration`, disconnects them with
    /// `notice`, and tells the operator `confirmation(name)`. The confirmation is queued
    /// here, under the lock, so it reaches the operator before the room's notice that the
    /// user left.
    /// - Returns: the target's name, e-mail key and IP (for the log).
    func ban(
        _ session: SessionID, target: String, for duration: Duration, notice: String,
        confirmation: (_ user: String) -> String
    ) -> Result<(user: String, email: String, ip: String), UserError> {
        let until = ContinuousClock.now + duration
        return withState { state, outbox in
            guard let banner = state.sessions[session], banner.isOperator else {
                return .failure(.operatorOnly("/ban"))
            }
            guard let (targetID, victim) = state.member(named: target) else { return .failure(.userNotOnline(target)) }
            guard targetID != session else { return .failure(.notToYourself) }
            state.bans[victim.emailKey] = until
            state.bans[victim.ip] = until
            outbox.post(.direct(session, [Self.encode(confirmation(victim.name))]), toShard: banner.shard)
            outbox.post(.disconnect(targetID, [Self.encode(notice)]), toShard: victim.shard)
            return .success((victim.name, victim.emailKey, victim.ip))
        }
    }

    func unban(_ session: SessionID, target: String) -> UserError? {
        let key = target.lowercased()
        return state.withLockedValue { state in
            guard state.sessions[session]?.isOperator == true else { return .operatorOnly("/unban") }
            guard state.bans.removeValue(forKey: key) != nil else { return .noBan(target) }
            return nil
        }
    }

    func bans(_ session: SessionID) -> Result<[(target: String, minutesLeft: Int)], UserError> {
        let now = ContinuousClock.now
        return state.withLockedValue { state in
            guard state.sessions[session]?.isOperator == true else { return .failure(.operatorOnly("/bans")) }
            state.sweepBans(now: now)
            let list = state.bans.map { target, until in
                (target: target, minutesLeft: Int(((until - now).components.seconds + 59) / 60))
            }
            return .success(list.sorted { $0.target < $1.target })
        }
    }

    func wall(_ session: SessionID, text: String) -> UserError? {
        withState { state, outbox in
            guard let member = state.sessions[session], member.isOperator else { return .operatorOnly("/wall") }
            let line = Self.encode(ServerLine.announcement(from: member.name, text))
            for shard in outbox.shards.indices { outbox.post(.everyoneOnline(line), toShard: shard) }
            return nil
        }
    }

    /// Drops expired bans and connection-rate entries; called periodically so neither grows.
    func sweep() {
        let now = ContinuousClock.now
        state.withLockedValue { state in
            state.sweepBans(now: now)
            state.connectionRate.sweep(now: now)
        }
    }

    // MARK: Shutdown

    /// Refuses new connections, tells everyone, and closes each connection once the notice
    /// is flushed.
    /// - Returns: a future that succeeds when the last connection has closed.
    func beginShutdown(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        let notice = Self.encode(ServerLine.shuttingDown)
        let (done, future) = withState { state, outbox -> (Bool, EventLoopFuture<Void>) in
            if let existing = state.allClosed { return (false, existing.futureResult) }
            state.isShuttingDown = true
            // Queued under the lock like every other event, so no shard can see a line
            // caused by another shard's shutdown (a departure) before its own notice.
            for index in shards.indices { outbox.post(.shutdown(notice), toShard: index) }
            if state.connectionCount == 0 { return (true, promise.futureResult) }
            state.allClosed = promise
            return (false, promise.futureResult)
        }
        if done { promise.succeed() }
        return future
    }

    /// Closes whatever is still open.
    func closeAll() {
        for shard in shards { shard.post(.closeAll) }
    }

    // MARK: Introspection (tests, metrics)

    struct Snapshot: Equatable {
        var connections: Int
        var ipSlots: Int
        var onlineUsers: Int
        var rooms: Int
        var trackedConnectionRates = 0
    }

    func snapshot() -> Snapshot {
        state.withLockedValue { state in
            Snapshot(
                connections: state.connectionCount,
                ipSlots: state.connectionsPerIP.count,
                onlineUsers: state.sessions.count,
                rooms: state.rooms.count,
                trackedConnectionRates: state.connectionRate.count
            )
        }
    }

    /// Encodes a line once, into an exact-size buffer of its own, with the trailing `\n`.
    static func encode(_ line: String) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: line.utf8.count + 1)
        buffer.writeString(line)
        buffer.writeInteger(UInt8(ascii: "\n"))
        return buffer
    }
}
