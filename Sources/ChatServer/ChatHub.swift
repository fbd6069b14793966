import ChatCore
import NIOCore
import Synchronization

/// The one owner of the shared state: who is online, which IP holds how many connections,
/// the rooms and their members.
///
/// Every change is a short critical section that decides *who receives what* and queues
/// the already encoded lines on the recipients' loop shards; the writes happen later on
/// those loops, never under the lock. Queuing under the lock is what gives each room a
/// total order: every shard sees a room's events in the order the lock was taken.
final class ChatHub: Sendable {
    struct Limits: Sendable {
        var maxConnectionsPerIP: Int
        var historySize: Int
    }

    let shards: [LoopShard]
    private let limits: Limits
    private let state: Mutex<HubState>
    private let nextSessionID = Atomic<UInt64>(1)

    init(eventLoops: [any EventLoop], limits: Limits) {
        precondition(!eventLoops.isEmpty && eventLoops.count <= 64, "1 to 64 event loops")
        self.shards = eventLoops.enumerated().map { LoopShard(index: $0.offset, eventLoop: $0.element) }
        self.limits = limits
        var state = HubState()
        state.rooms[RoomName.general.key] = Room(
            name: .general,
            id: 0,
            shardCount: eventLoops.count,
            historySize: limits.historySize
        )
        self.state = Mutex(state)
    }

    func shard(for eventLoop: any EventLoop) -> LoopShard {
        shards.first { $0.eventLoop === eventLoop } ?? shards[0]
    }

    func makeSessionID() -> SessionID {
        nextSessionID.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    // MARK: Connections

    enum Admission: Equatable {
        case admitted
        case ipLimitReached
        case shuttingDown
    }

    /// Takes one of the IP's connection slots.
    func openConnection(ip: String) -> Admission {
        state.withLock { state in
            if state.isShuttingDown { return .shuttingDown }
            let held = state.connectionsPerIP[ip, default: 0]
            guard held < limits.maxConnectionsPerIP else { return .ipLimitReached }
            state.connectionsPerIP[ip] = held + 1
            state.connectionCount += 1
            return .admitted
        }
    }

    /// Gives the slot back, the moment the connection ends.
    func closeConnection(ip: String) {
        let allClosed: EventLoopPromise<Void>? = state.withLock { state in
            let held = state.connectionsPerIP[ip, default: 0]
            state.connectionsPerIP[ip] = held > 1 ? held - 1 : nil
            state.connectionCount -= 1
            guard state.isShuttingDown, state.connectionCount == 0 else { return nil }
            defer { state.allClosed = nil }
            return state.allClosed
        }
        allClosed?.succeed()
    }

    // MARK: Sessions

    /// Puts a verified user online under `username` and into `#general`.
    /// - Returns: the username, or why it can't be had.
    func login(_ session: SessionID, username: String, shard: Int) -> Result<String, UserError> {
        let now = ContinuousClock.now
        var outbox = Outbox(shards: shards)
        let result: Result<String, UserError> = state.withLock { state in
            let key = username.lowercased()
            guard state.sessionIDsByName[key] == nil else { return .failure(.usernameTaken(username)) }
            state.sessionIDsByName[key] = session
            state.sessions[session] = Member(name: username, shard: shard, roomKey: RoomName.general.key)
            var welcome = ServerLine.loggedIn(username: username, room: RoomName.general.display)
                .map(Self.encode)
            state.enter(
                session, into: RoomName.general, username: username, shard: shard,
                firstLines: &welcome, now: now, outbox: &outbox, limits: limits)
            return .success(username)
        }
        outbox.wakeShards()
        return result
    }

    /// Takes the user offline: leaves their room, frees the name.
    func logout(_ session: SessionID) {
        var outbox = Outbox(shards: shards)
        state.withLock { state in
            guard let member = state.sessions.removeValue(forKey: session) else { return }
            state.sessionIDsByName[member.name.lowercased()] = nil
            state.leaveRoom(session, member: member, outbox: &outbox)
        }
        outbox.wakeShards()
    }

    /// A chat line from the session to its room; `line` is the encoded `[name]: text`.
    func say(_ session: SessionID, line: ByteBuffer) {
        let now = ContinuousClock.now
        var outbox = Outbox(shards: shards)
        state.withLock { state in
            guard let roomKey = state.sessions[session]?.roomKey else { return }
            state.rooms[roomKey]?.history.append(line, at: now)
            guard let room = state.rooms[roomKey] else { return }
            outbox.post(line, to: room)
        }
        outbox.wakeShards()
    }

    /// Moves the session to another room, creating it (public) when it does not exist.
    func join(_ session: SessionID, room name: RoomName) -> UserError? {
        move(session, to: name, ifAlreadyThere: { .alreadyInRoom($0) }) { _, joined in
            [ServerLine.youJoined(joined)]
        }
    }

    /// Moves the session back to `#general`.
    func leave(_ session: SessionID) -> UserError? {
        let general = RoomName.general
        return move(session, to: general, ifAlreadyThere: { _ in .alreadyInDefaultRoom }) { previous, _ in
            [ServerLine.returnedToDefault(from: previous, defaultRoom: general.display)]
        }
    }

    private func move(
        _ session: SessionID,
        to name: RoomName,
        ifAlreadyThere: (_ room: String) -> UserError,
        announcement: (_ previousRoom: String, _ joinedRoom: String) -> [String]
    ) -> UserError? {
        let now = ContinuousClock.now
        var outbox = Outbox(shards: shards)
        let error = state.withLock { state -> UserError? in
            guard let member = state.sessions[session] else { return nil }
            if member.roomKey == name.key {
                return ifAlreadyThere(state.rooms[name.key]?.name.display ?? name.display)
            }
            let previous = state.rooms[member.roomKey]?.name.display ?? member.roomKey
            state.leaveRoom(session, member: member, outbox: &outbox)
            state.sessions[session]?.roomKey = name.key
            let joined = state.rooms[name.key]?.name ?? name
            var lines = announcement(previous, joined.display).map(Self.encode)
            state.enter(
                session, into: joined, username: member.name, shard: member.shard,
                firstLines: &lines, now: now, outbox: &outbox, limits: limits)
            return nil
        }
        outbox.wakeShards()
        return error
    }

    /// A private message. Delivered on the recipient's loop, after anything the sender
    /// said before it.
    /// - Returns: the recipient's name as they spell it.
    func privateMessage(from session: SessionID, to target: String, text: String) -> Result<String, UserError> {
        var outbox = Outbox(shards: shards)
        let result = state.withLock { state -> Result<String, UserError> in
            guard let sender = state.sessions[session] else { return .failure(.userNotOnline(target)) }
            guard let targetID = state.sessionIDsByName[target.lowercased()],
                let recipient = state.sessions[targetID]
            else { return .failure(.userNotOnline(target)) }
            guard targetID != session else { return .failure(.messageToSelf) }
            let line = Self.encode(ServerLine.privateMessage(from: sender.name, text))
            outbox.post(.direct(targetID, [line]), toShard: recipient.shard)
            return .success(recipient.name)
        }
        outbox.wakeShards()
        return result
    }

    /// Everyone online, sorted without regard to case.
    func onlineUsernames() -> [String] {
        let names = state.withLock { state in state.sessions.values.map(\.name) }
        return names.sorted { ($0.lowercased(), $0) < ($1.lowercased(), $1) }
    }

    /// The rooms the session may see, sorted by name.
    func roomListings(for session: SessionID) -> [ServerLine.RoomListing] {
        let listings = state.withLock { state -> [ServerLine.RoomListing] in
            let current = state.sessions[session]?.roomKey
            return state.rooms.values.map { room in
                ServerLine.RoomListing(
                    name: room.name.display,
                    isPrivate: false,
                    memberCount: room.members.count,
                    isCurrent: room.name.key == current
                )
            }
        }
        return listings.sorted { $0.name.lowercased() < $1.name.lowercased() }
    }

    // MARK: Shutdown

    /// Refuses new connections, tells everyone, and closes each connection once the notice
    /// is flushed.
    /// - Returns: a future that succeeds when the last connection has closed.
    func beginShutdown(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        let (done, future) = state.withLock { state -> (Bool, EventLoopFuture<Void>) in
            if let existing = state.allClosed { return (false, existing.futureResult) }
            state.isShuttingDown = true
            if state.connectionCount == 0 { return (true, promise.futureResult) }
            state.allClosed = promise
            return (false, promise.futureResult)
        }
        if done { promise.succeed() }
        let notice = Self.encode(ServerLine.shuttingDown)
        for shard in shards { shard.post(.shutdown(notice)) }
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
    }

    func snapshot() -> Snapshot {
        state.withLock { state in
            Snapshot(
                connections: state.connectionCount,
                ipSlots: state.connectionsPerIP.count,
                onlineUsers: state.sessions.count,
                rooms: state.rooms.count
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

/// A user who is online, as the hub knows them.
struct Member {
    var name: String
    var shard: Int
    var roomKey: String
}

struct Room {
    let name: RoomName
    let id: RoomID
    /// Members in the order they joined.
    var members: [SessionID] = []
    /// How many members each loop shard has, so a line goes only to shards that need it.
    var membersPerShard: [Int]
    var history: RoomHistory<ByteBuffer>

    init(name: RoomName, id: RoomID, shardCount: Int, historySize: Int) {
        self.name = name
        self.id = id
        self.membersPerShard = Array(repeating: 0, count: shardCount)
        self.history = RoomHistory(capacity: historySize)
    }
}

struct HubState {
    var sessions: [SessionID: Member] = [:]
    var sessionIDsByName: [String: SessionID] = [:]
    var rooms: [String: Room] = [:]
    var nextRoomID: RoomID = 1
    var connectionsPerIP: [String: Int] = [:]
    var connectionCount = 0
    var isShuttingDown = false
    var allClosed: EventLoopPromise<Void>?

    /// Adds the session to the room (created when missing) and queues, for the session,
    /// `firstLines` followed by the room's history, and for the others the join notice.
    mutating func enter(
        _ session: SessionID,
        into name: RoomName,
        username: String,
        shard: Int,
        firstLines: inout [ByteBuffer],
        now: ContinuousClock.Instant,
        outbox: inout Outbox,
        limits: ChatHub.Limits
    ) {
        if rooms[name.key] == nil {
            rooms[name.key] = Room(
                name: name, id: nextRoomID, shardCount: outbox.shards.count, historySize: limits.historySize)
            nextRoomID += 1
        }
        rooms[name.key]!.members.append(session)
        rooms[name.key]!.membersPerShard[shard] += 1
        let room = rooms[name.key]!
        let history = room.history.recent(at: now)
        if !history.isEmpty {
            firstLines.append(ChatHub.encode(ServerLine.historyHeader))
            firstLines.append(contentsOf: history)
            firstLines.append(ChatHub.encode(ServerLine.historyFooter))
        }
        outbox.post(.enterRoom(session, room.id, firstLines), toShard: shard)
        outbox.post(ChatHub.encode(ServerLine.joinedRoom(username)), to: room, except: session)
    }

    /// Removes the session from its room, tells the others, and drops an empty room other
    /// than `#general`.
    mutating func leaveRoom(_ session: SessionID, member: Member, outbox: inout Outbox) {
        guard var room = rooms[member.roomKey] else { return }
        if let index = room.members.firstIndex(of: session) {
            room.members.remove(at: index)
            room.membersPerShard[member.shard] -= 1
        }
        outbox.post(.exitRoom(session, room.id), toShard: member.shard)
        if room.members.isEmpty && room.name != .general {
            rooms[member.roomKey] = nil
        } else {
            rooms[member.roomKey] = room
            outbox.post(ChatHub.encode(ServerLine.leftRoom(member.name)), to: room)
        }
    }
}

/// Collects which shards need a drain scheduled while the hub's lock is held, so the
/// wake-ups (which may be syscalls) happen after it is released.
struct Outbox {
    let shards: [LoopShard]
    private var wake: UInt64 = 0

    init(shards: [LoopShard]) {
        self.shards = shards
    }

    mutating func post(_ event: ShardEvent, toShard index: Int) {
        if shards[index].enqueue(event) { wake |= 1 << UInt64(index) }
    }

    mutating func post(_ line: ByteBuffer, to room: Room, except: SessionID? = nil) {
        for (index, count) in room.membersPerShard.enumerated() where count > 0 {
            post(.room(room.id, line, except: except), toShard: index)
        }
    }

    func wakeShards() {
        var pending = wake
        while pending != 0 {
            let index = pending.trailingZeroBitCount
            pending &= pending - 1
            shards[index].scheduleDrain()
        }
    }
}
