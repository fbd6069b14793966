/// Where a Redis server is and how to log in: `redis://[user:password@]host:port[/db]`, or
/// `rediss://...` for TLS. A password may also come separately (`REDIS_PASSWORD`); it is
/// never part of ``description``.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    public var database: Int?
    public var usesTLS: Bool

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case scheme
        case host
        case port
        case database

        public var description: String {
            switch self {
            case .scheme: "must start with redis:// or rediss://"
            case .host: "has no host"
            case .port: "has a port that is not a number from 1 to 65535"
            case .database: "has a database that is not a number from 0 to 15"
            }
        }
    }

    public init(
        host: String, port: Int = 6379, username: String? = nil, password: String? = nil, database: Int? = nil,
        usesTLS: Bool = false
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.usesTLS = usesTLS
    }

    /// - Throws: ``ParseError`` naming what is wrong (never echoing the password).
    public init(parsing text: String) throws(ParseError) {
        let rest: Substring
        if text.hasPrefix("rediss://") {
            usesTLS = true
            rest = text.dropFirst("rediss://".count)
        } else if text.hasPrefix("redis://") {
            usesTLS = false
            rest = text.dropFirst("redis://".count)
        } else {
            throw .scheme
        }
        var authority = rest
        database = nil
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            let path = rest[rest.index(after: slash)...]
            if !path.isEmpty {
                guard let number = Int(path), (0...15).contains(number) else { throw .database }
                database = number
            }
        }
        username = nil
        password = nil
        if let at = authority.lastIndex(of: "@") {
            let credentials = authority[..<at]
            authority = authority[authority.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = credentials[..<colon]
                username = user.isEmpty ? nil : Self.percentDecoded(user)
                password = Self.percentDecoded(credentials[credentials.index(after: colon)...])
            } else if !credentials.isEmpty {
                // `redis://secret@host`: a lone credential is the password, as redis-cli reads it.
                password = Self.percentDecoded(credentials)
            }
        }
        var hostPart = authority
        port = 6379
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            // An IPv6 literal: [::1]:6380
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let number = Int(after.dropFirst()), (1...65535).contains(number) else { throw .port }
                port = number
            } else if !after.isEmpty {
                throw .port
            }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            guard let number = Int(authority[authority.index(after: colon)...]), (1...65535).contains(number) else {
                throw .port
            }
            port = number
        }
        guard !hostPart.isEmpty else { throw .host }
        host = String(hostPart)
    }

    /// The URL without its password, for logs.
    public var description: String {
        var shownUser = ""
        if let username {
            shownUser = password == nil ? "\(username)@" : "\(username):***@"
        } else if password != nil {
            shownUser = ":***@"
        }
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "\(usesTLS ? "rediss" : "redis")://\(shownUser)\(shownHost):\(port)\(database.map { "/\($0)" } ?? "")"
    }

    private static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
