/// The names of users online, as far as the client has seen: learned from `/users`
/// output, join and leave notices, name changes, and who speaks. Tab completion offers them.
public struct Roster: Sendable {
    /// Lower-cased name to the name as spelled.
    private var names: [String: String] = [:]
    /// Inside a `/users` list: its remaining rows, which replace what was known.
    private var listing: (remaining: Int, names: [String: String])?

    public init() {}

    public var all: [String] { names.values.sorted { $0.lowercased() < $1.lowercased() } }

    public mutating func insert(_ name: String) {
        names[name.lowercased()] = name
    }

    /// Learns from one server line.
    public mutating func learn(from line: String) {
        if var current = listing {
            if current.remaining > 0, line.hasPrefix("  - ") {
                let name = line.dropFirst(4).prefix { $0 != " " }
                current.names[name.lowercased()] = String(name)
                current.remaining -= 1
                listing = current.remaining == 0 ? nil : current
                if current.remaining == 0 { names = current.names }
                return
            }
            listing = nil
        }
        if line.hasPrefix("Online Users ("), line.hasSuffix("):"),
            let count = Int(line.dropFirst("Online Users (".count).dropLast(2))
        {
            if count == 0 { names = [:] } else { listing = (count, [:]) }
            return
        }
        if line.hasPrefix("*** "), line.hasSuffix(" joined the room ***") {
            let name = line.dropFirst(4).dropLast(" joined the room ***".count)
            if ServerLineKind.isName(name) { insert(String(name)) }
            return
        }
        if line.hasPrefix("*** "), line.hasSuffix(" left the room ***") {
            let name = line.dropFirst(4).dropLast(" left the room ***".count)
            if ServerLineKind.isName(name) { names[name.lowercased()] = nil }
            return
        }
        if line.hasPrefix("*** "), line.hasSuffix(" ***") {
            let parts = line.dropFirst(4).dropLast(4).split(separator: " is now known as ")
            if parts.count == 2, ServerLineKind.isName(parts[0]), ServerLineKind.isName(parts[1]) {
                let (old, new) = (parts[0], parts[1])
                names[old.lowercased()] = nil
                insert(String(new))
                return
            }
        }
        switch ServerLineKind(line) {
        case .chat(let from, _), .privateMessage(let from, _): insert(from)
        case .action(let by, _): insert(by)
        default: break
        }
    }
}
