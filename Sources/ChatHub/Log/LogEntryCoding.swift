import Foundation

/// How a ``HubCommand`` is written into the hub log and read back.
///
/// Chat lines, by far the most frequent entries, have a compact binary form (`S`, the
/// session id, whether it is an action, the text); decoding JSON cost a node more CPU per
/// line than delivering it to a room of 50. Every other command is JSON, so an operator can
/// read most of the stream with `redis-cli XRANGE`. An entry this version cannot read (a
/// newer node's) fails to decode: it is skipped and logged, never misread.
package enum LogEntryCoding {
    /// The first byte of a chat line's binary form (JSON starts with `{`).
    static let sayTag = UInt8(ascii: "S")

    package enum DecodingError: Error {
        case truncated
    }

    package static func encode(_ command: HubCommand) -> [UInt8] {
        if case .say(let session, let text, let isAction) = command {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(10 + text.utf8.count)
            bytes.append(sayTag)
            withUnsafeBytes(of: session.bigEndian) { bytes.append(contentsOf: $0) }
            bytes.append(isAction ? 1 : 0)
            bytes.append(contentsOf: text.utf8)
            return bytes
        }
        // A HubCommand holds only strings, numbers and booleans: encoding cannot fail.
        return (try? Array(JSONEncoder().encode(command))) ?? []
    }

    package static func decode(_ bytes: [UInt8]) throws -> HubCommand {
        if bytes.first == sayTag {
            guard bytes.count >= 10 else { throw DecodingError.truncated }
            var session: SessionID = 0
            for byte in bytes[1..<9] { session = session << 8 | SessionID(byte) }
            return .say(session, text: String(decoding: bytes[10...], as: UTF8.self), isAction: bytes[9] == 1)
        }
        return try JSONDecoder().decode(HubCommand.self, from: Data(bytes))
    }
}
