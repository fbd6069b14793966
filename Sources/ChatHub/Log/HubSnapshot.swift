import ChatCore
import Foundation

/// The shared state as a cluster stores it in `{chat}:snapshot`, with the id of the last
/// log entry it includes: a starting node loads it and reads the log on from there, so
/// start-up does not grow with the cluster's age, and the log can be trimmed behind it.
///
/// The stored form is `HubState`'s own `Codable` form, so every field the state has is in
/// it without a second list to keep up. Loading gives the state the node's own limits (the
/// cluster's settings check keeps them equal on every node) and never a shutdown in
/// progress: those are the loading node's, not the writer's.
package enum HubSnapshot {
    /// The format this version writes. A snapshot of a format it does not read is refused,
    /// never misread (see docs/CLUSTER.md on rolling upgrades).
    static let format = 5
    /// Older formats lack fields added since (format 1 the configuration, format 2 the
    /// `/nick` throttle, format 3 a room's owner as an address, format 4 the resume
    /// tokens); they are still read, the
    /// missing fields taking a fresh state's values (a room of format 3 or older has no
    /// owner: its owner was a connection).
    static let formatsRead: ClosedRange<Int> = 1...5
    /// The first line of a stored snapshot, before the JSON: `chat-snapshot/<format> <entry
    /// id> <position>`, the position (how many entries the log had taken up to that one)
    /// being optional.
    static let magic = "chat-snapshot/"

    enum ReadError: Error, CustomStringConvertible {
        case notASnapshot
        case otherFormat(String)

        var description: String {
            switch self {
            case .notASnapshot: "{chat}:snapshot does not hold a snapshot"
            case .otherFormat(let format):
                "{chat}:snapshot is of format \(format), this version reads \(HubSnapshot.formatsRead.lowerBound) to \(HubSnapshot.formatsRead.upperBound) only"
            }
        }
    }

    /// The stored form: the header line, then the state as JSON.
    package static func stored(_ state: HubState, upTo entry: StreamID, position: Int64?) throws -> [UInt8] {
        let header = "\(magic)\(format) \(entry)" + (position.map { " \($0)" } ?? "")
        return Array("\(header)\n".utf8) + Array(try JSONEncoder().encode(state))
    }

    /// Reads a stored snapshot.
    /// - Parameter configuration: the loading node's limits, which the state takes.
    /// - Throws: ``ReadError`` for one of another format (before decoding anything of it).
    package static func read(
        _ bytes: [UInt8], configuration: HubState.Configuration
    ) throws -> (state: HubState, upTo: StreamID, position: Int64?) {
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { throw ReadError.notASnapshot }
        let header = String(decoding: bytes[..<newline], as: UTF8.self)
        guard header.hasPrefix(magic) else { throw ReadError.notASnapshot }
        let fields = header.dropFirst(magic.count).split(separator: " ")
        guard fields.count == 2 || fields.count == 3, let id = StreamID(String(fields[1])) else {
            throw ReadError.notASnapshot
        }
        guard let format = Int(fields[0]), formatsRead.contains(format) else {
            throw ReadError.otherFormat(String(fields[0]))
        }
        var json = Data(bytes[(newline + 1)...])
        if format < Self.format { json = try addingMissingFields(to: json, configuration: configuration) }
        var state = try JSONDecoder().decode(HubState.self, from: json)
        state.configuration = configuration
        state.isShuttingDown = false
        return (state, id, fields.count == 3 ? Int64(fields[2]) : nil)
    }

    /// An older snapshot in this format: every field it lacks as a fresh state has it.
    private static func addingMissingFields(to json: Data, configuration: HubState.Configuration) throws -> Data {
        guard var object = try JSONSerialization.jsonObject(with: json) as? [String: Any],
            let fresh = try JSONSerialization.jsonObject(
                with: JSONEncoder().encode(HubState(configuration: configuration))) as? [String: Any]
        else { throw ReadError.notASnapshot }
        for (key, value) in fresh where object[key] == nil { object[key] = value }
        // The loader's limits in any case (every field of this version's configuration).
        object["configuration"] = fresh["configuration"]
        return try JSONSerialization.data(withJSONObject: object)
    }
}
