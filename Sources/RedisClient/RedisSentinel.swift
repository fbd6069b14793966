import NIOCore
import NIOPosix
import NIOSSL

/// The primary of a Redis deployment watched by Redis Sentinel: which server it is, as the
/// sentinels say, checked with the server's own `ROLE` before anything is written to it.
///
/// Sentinel's client protocol (https://redis.io/docs/latest/develop/reference/sentinel-clients/):
/// ask the sentinels for the primary, connect to it, and trust it only once it says it is a
/// master; follow `+switch-master` to learn of a failover at once rather than when a command
/// fails. Where the sentinels disagree for a moment, the newest configuration wins.
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

    /// Where the primary is: of the sentinels that answer (all asked at once), the one
    /// whose configuration is the newest (the highest `config-epoch` of `SENTINEL MASTER`).
    ///
    /// Not simply the first answer: a sentinel that led an earlier failover can, when that
    /// failover times out, switch to the replica it promoted then, and name that server
    /// (perhaps an old primary just restarted with stale data) until the others' newer
    /// configuration reaches it, a second or two later.
    /// - Throws: ``RedisError/notPrimary(_:)`` when none names one, with what each said.
    public func primary(
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, clientName: String? = nil
    ) async throws -> RedisAddress {
        let answers = await withTaskGroup(of: Result<(RedisAddress, Int64), RedisError>.self) { tasks in
            for sentinel in sentinels {
                tasks.addTask { await self.ask(sentinel, group: group, clientName: clientName) }
            }
            return await tasks.reduce(into: []) { $0.append($1) }
        }
        let named = answers.compactMap { try? $0.get() }
        guard let newest = named.max(by: { $0.1 < $1.1 }) else {
            let failures = answers.compactMap { answer -> String? in
                guard case .failure(let error) = answer else { return nil }
                return error.message.isEmpty ? "\(error)" : error.message
            }
            throw RedisError.notPrimary(failures.joined(separator: "; "))
        }
        return newest.0
    }

    /// One sentinel's view of the primary: its address and the configuration's epoch.
    private func ask(
        _ sentinel: RedisAddress, group: any EventLoopGroup, clientName: String?
    ) async -> Result<(RedisAddress, Int64), RedisError> {
        do {
            let connection = try await RedisConnection.connect(
                configuration(of: sentinel, clientName: clientName), group: group)
            defer { Task { await connection.close() } }
            let answer = try await connection.send(RESPCommand(["SENTINEL", "MASTER", masterName]))
            var fields: [String: String] = [:]
            switch answer {
            case .map(let pairs):
                for pair in pairs { if let key = pair.key.string { fields[key] = pair.value.string } }
            case .array(let flat):
                for index in stride(from: 0, to: flat.count - 1, by: 2) {
                    if let key = flat[index].string { fields[key] = flat[index + 1].string }
                }
            default:
                break
            }
            guard let host = fields["ip"], let port = fields["port"].flatMap({ Int($0) }) else {
                return .failure(.notPrimary("\(sentinel): no primary named \(masterName)"))
            }
            return .success((RedisAddress(host: host, port: port), fields["config-epoch"].flatMap { Int64($0) } ?? 0))
        } catch let error as RedisError where error.code == .server {
            return .failure(.notPrimary("\(sentinel): no primary named \(masterName) (\(error.message))"))
        } catch let error as RedisError {
            return .failure(RedisError(error.code, message: "\(sentinel): \(error)"))
        } catch {
            return .failure(.notPrimary("\(sentinel): \(error)"))
        }
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
