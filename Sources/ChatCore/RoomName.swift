/// A room name: `#` followed by 1-32 characters of `[A-Za-z0-9_-]`, compared without
/// regard to case.
public struct RoomName: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The name as first written, e.g. `#Gaming`.
    public let display: String
    /// The lower-cased name, the room's identity, e.g. `#gaming`.
    public let key: String

    public static let maximumLength = 32
    public static let general = RoomName("#general")!

    /// Parses user input; `#` is prepended when missing.
    public init?(_ input: some StringProtocol) {
        var name = Substring(input)
        if name.first == "#" { name = name.dropFirst() }
        guard !name.isEmpty, name.utf8.count <= Self.maximumLength else { return nil }
        for byte in name.utf8 {
            guard UsernameRules.isAllowed(byte) || byte == UInt8(ascii: "-") else { return nil }
        }
        self.display = "#" + name
        self.key = display.lowercased()
    }

    public var description: String { display }

    public static func == (lhs: RoomName, rhs: RoomName) -> Bool { lhs.key == rhs.key }
    public func hash(into hasher: inout Hasher) { hasher.combine(key) }

    // Encoded as the name alone; decoding validates it again.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let name = RoomName(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad room name"))
        }
        self = name
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(display)
    }
}
