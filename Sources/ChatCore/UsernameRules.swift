/// The rules a username must follow: `minimumLength`...`maximumLength` characters of
/// `[A-Za-z0-9_]`. Uniqueness (case-insensitive, among online users) is the hub's job.
public struct UsernameRules: Sendable, Equatable {
    public var minimumLength: Int
    public var maximumLength: Int

    /// Names nobody may take (compared without regard to case): they would let a user
    /// pass for the server or its staff.
    public static let reserved: Set<String> = [
        "admin", "administrator", "root", "server", "system", "operator", "op", "sysop", "mod", "moderator",
        "staff", "support", "help", "info", "owner", "everyone", "all", "here", "nobody", "anonymous",
        "chanserv", "nickserv", "null", "undefined",
    ]

    public init(minimumLength: Int = 3, maximumLength: Int = 16) {
        self.minimumLength = minimumLength
        self.maximumLength = maximumLength
    }

    /// The rule a candidate breaks.
    public enum Violation: Equatable, Sendable {
        case length(minimum: Int, maximum: Int)
        case characters
        case reserved(String)

        public var message: String {
            switch self {
            case .length(let minimum, let maximum):
                return "Username must be between \(minimum) and \(maximum) characters."
            case .characters:
                return "Username may only contain letters, digits and underscores."
            case .reserved(let name):
                return "Username '\(name)' is reserved."
            }
        }
    }

    /// Checks a candidate username.
    /// - Returns: `nil` when the name is acceptable, else the rule it breaks.
    public func violation(in candidate: some StringProtocol) -> Violation? {
        let utf8 = candidate.utf8
        for byte in utf8 where !Self.isAllowed(byte) {
            return .characters
        }
        guard utf8.count >= minimumLength, utf8.count <= maximumLength else {
            return .length(minimum: minimumLength, maximum: maximumLength)
        }
        if Self.reserved.contains(candidate.lowercased()) { return .reserved(String(candidate)) }
        return nil
    }

    static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }
}
