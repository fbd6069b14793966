import NIOCore
import NIOPosix
import NIOSSL

/// The primary of a Redis deployment watched by Redis Sentinel: which server it is, as the
/// sentinels say, checked with the server's own `ROLE` before anything is written to it.
///
/// Sentinel's client protocol (https://redis.io/docs/latest/develop/reference/sentinel-clients/):
/// ask the sentinels in turn with `SENTINEL GET-MASTER-ADDR-BY-NAME`, connect to the address
/// the first that answers gives, and trust it only once it says it is a master; follow
/// `+switch-master` to learn of a failover at once rather than when a command fails.
public struct RedisSentinel: Sendable {
    public var sentinels: [RedisAddress]
    /// The name the sentinels monitor the primary by (`sentinel monitor <name> ...`).
    public var masterName: String
    /// Sentinel's own password (`requirepass` in sentinel.conf), when it has one. Never logged.
    public var password: String?
    /// TLS for the sentinels too, when the data servers use it.
    public var tls: TLSConfiguration?
    public var connectTimeout: Duration

    public init(
        sentinels: [RedisAddress], masterName: String, password: String? = nil, tls: TLSConfiguration? = nil,
        connectTimeout: Duration = .seconds(2)
    ) {
        self.sentinels = sentinels
        self.masterName = masterName
        self.password = password
        self.tls = tls
        self.connectTimeout = connectTimeout
    }

    /// The configuration of a connection to one sentinel.
    public func configuration(of sentinel: RedisAddress, clientName: String?) -> RedisConnection.Configuration {
        RedisConnection.Configuration(
            host: sentinel.host, port: sentinel.port, password: password, clientName: clientName,
            connectTimeout: connectTimeout, commandTimeout: connectTimeout, tls: tls)
    }

    /// Where the primary is: the answer of the first sentinel that gives one, asked in
    /// order (a sentinel that is down costs its connect timeout at most).
    /// - Throws: ``RedisError/notPrimary(_:)`` when none does, naming what each said.
    public func primary(
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, clientName: String? = nil
    ) async throws -> RedisAddress {
        var failures: [String] = []
        for sentinel in sentinels {
            do {
                let connection = try await RedisConnection.connect(
                    configuration(of: sentinel, clientName: clientName), group: group)
                defer { Task { await connection.close() } }
                let answer = try await connection.send(
                    RESPCommand(["SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName]))
                guard case .array(let parts) = answer, parts.count == 2, let host = parts[0].string,
                    let port = parts[1].string.flatMap({ Int($0) })
                else {
                    failures.append("\(sentinel): no primary named \(masterName)")
                    continue
                }
                return RedisAddress(host: host, port: port)
            } catch {
                failures.append("\(sentinel): \(error)")
            }
        }
        throw RedisError.notPrimary(failures.joined(separator: "; "))
    }

    /// Connects to the primary the sentinels name, with `configuration`'s password, TLS and
    /// timeouts, and checks with `ROLE` that it is one: a server that says it is a replica
    /// (a demoted primary that came back, or a sentinel that has not heard of a failover) is
    /// closed again.
    /// - Throws: ``RedisError/notPrimary(_:)``, or what connecting threw.
    public func connectToPrimary(
        _ configuration: RedisConnection.Configuration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> RedisConnection {
        let address = try await primary(group: group, clientName: configuration.clientName)
        var configuration = configuration
        configuration.host = address.host
        configuration.port = address.port
        let connection = try await RedisConnection.connect(configuration, group: group)
        do {
            let role = try await Self.role(of: connection)
            guard role == "master" else {
                throw RedisError.notPrimary("\(address) says it is a \(role)")
            }
            return connection
        } catch {
            await connection.close()
            throw error
        }
    }

    /// What a server says it is: `master`, `slave` or `sentinel`.
    public static func role(of connection: RedisConnection) async throws -> String {
        let answer = try await connection.send(RESPCommand(["ROLE"]))
        guard case .array(let parts) = answer, let role = parts.first?.string else {
            throw RedisError.protocolError("ROLE answered \(answer)")
        }
        return role
    }

    /// A failover a sentinel announced: the `+switch-master` message's text is
    /// `<master name> <old ip> <old port> <new ip> <new port>`.
    public struct Switch: Sendable, Hashable {
        public var masterName: String
        public var from: RedisAddress
        public var to: RedisAddress

        /// - Returns: `nil` for any push that is not a `+switch-master` message.
        public init?(push value: RESPValue) {
            guard case .push(let parts) = value, parts.count == 3, parts[0].string == "message",
                parts[1].string == "+switch-master", let text = parts[2].string
            else { return nil }
            let words = text.split(separator: " ")
            guard words.count == 5, let fromPort = Int(words[2]), let toPort = Int(words[4]) else { return nil }
            masterName = String(words[0])
            from = RedisAddress(host: String(words[1]), port: fromPort)
            to = RedisAddress(host: String(words[3]), port: toPort)
        }
    }
}
