import ChatCore
import Foundation

/// The shared state as a cluster stores it in `{chat}:snapshot`, with the id of the last
/// log entry it includes: a starting node loads it and reads the log on from there, so
/// start-up does not grow with the cluster's age, and the log can be trimmed behind it.
///
/// The limits (`HubState.Configuration`) are not in it: they are the node's settings, which
/// the cluster's settings check keeps equal on every node.
struct HubSnapshot: Codable {
    /// The format this version writes and reads. A snapshot of another format is refused,
    /// never misread (see README, "Running several nodes", on rolling upgrades).
    static let format = 1
    /// The first line of a stored snapshot, before the JSON: `chat-snapshot/<format> <entry
    /// id> <position>`, the position (how many entries the log had taken up to that one)
    /// being optional.
    static let magic = "chat-snapshot/"

    var connections: [SessionID: String]
    var connectionsPerIP: [String: Int]
    var connectionsPerNode: [NodeNumber: Int]
    var connectionChurn: UInt64
    var connectionRate: RateLimit<String>
    var codeRequests: CodeRequestThrottle
    var sessions: [SessionID: Member]
    var sessionIDsByName: [String: SessionID]
    var rooms: [String: Room]
    var nextRoomID: RoomID
    var bans: [String: LogTime]

    init(_ state: HubState) {
        connections = state.connections
        connectionsPerIP = state.connectionsPerIP
        connectionsPerNode = state.connectionsPerNode
        connectionChurn = state.connectionChurn
        connectionRate = state.connectionRate
        codeRequests = state.codeRequests
        sessions = state.sessions
        sessionIDsByName = state.sessionIDsByName
        rooms = state.rooms
        nextRoomID = state.nextRoomID
        bans = state.bans
    }

    /// The state, with this node's limits.
    func state(configuration: HubState.Configuration) -> HubState {
        var state = HubState(configuration: configuration)
        state.connections = connections
        state.connectionsPerIP = connectionsPerIP
        state.connectionsPerNode = connectionsPerNode
        state.connectionChurn = connectionChurn
        state.connectionRate = connectionRate
        state.codeRequests = codeRequests
        state.sessions = sessions
        state.sessionIDsByName = sessionIDsByName
        state.rooms = rooms
        state.nextRoomID = nextRoomID
        state.bans = bans
        return state
    }

    enum ReadError: Error, CustomStringConvertible {
        case notASnapshot
        case otherFormat(String)

        var description: String {
            switch self {
            case .notASnapshot: "{chat}:snapshot does not hold a snapshot"
            case .otherFormat(let format):
                "{chat}:snapshot is of format \(format), this version reads \(HubSnapshot.format) only"
            }
        }
    }

    /// The stored form: the header line, then JSON.
    func stored(upTo entry: StreamID, position: Int64?) throws -> [UInt8] {
        let header = "\(Self.magic)\(Self.format) \(entry)" + (position.map { " \($0)" } ?? "")
        return Array("\(header)\n".utf8) + Array(try JSONEncoder().encode(self))
    }

    /// Reads a stored snapshot.
    /// - Throws: ``ReadError`` for one of another format (before decoding anything of it).
    static func read(_ bytes: [UInt8]) throws -> (snapshot: HubSnapshot, upTo: StreamID, position: Int64?) {
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { throw ReadError.notASnapshot }
        let header = String(decoding: bytes[..<newline], as: UTF8.self)
        guard header.hasPrefix(magic) else { throw ReadError.notASnapshot }
        let fields = header.dropFirst(magic.count).split(separator: " ")
        guard fields.count == 2 || fields.count == 3, let id = StreamID(String(fields[1])) else {
            throw ReadError.notASnapshot
        }
        guard fields[0] == "\(format)" else { throw ReadError.otherFormat(String(fields[0])) }
        let snapshot = try JSONDecoder().decode(HubSnapshot.self, from: Data(bytes[(newline + 1)...]))
        return (snapshot, id, fields.count == 3 ? Int64(fields[2]) : nil)
    }
}
