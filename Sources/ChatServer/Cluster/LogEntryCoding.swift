import Foundation

/// How a ``HubCommand`` is written into the hub log and read back: JSON, so an operator can
/// read the stream with `redis-cli XRANGE` and a node of a newer version can tell an entry
/// it does not know (decoding fails; the entry is skipped and logged, never misread).
enum LogEntryCoding {
    static func encode(_ command: HubCommand) -> [UInt8] {
        // A HubCommand holds only strings, numbers and booleans: encoding cannot fail.
        (try? Array(JSONEncoder().encode(command))) ?? []
    }

    static func decode(_ bytes: [UInt8]) throws -> HubCommand {
        try JSONDecoder().decode(HubCommand.self, from: Data(bytes))
    }
}
