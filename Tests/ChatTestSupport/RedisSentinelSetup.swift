import Foundation
import NIOConcurrencyHelpers
import RedisClient

/// A Redis Sentinel deployment on loopback for one test: a primary and one or two replicas
/// (real `redis-server`s with append-only files) and three real sentinels (quorum two)
/// watching them under ``masterName``, with a short `down-after-milliseconds`
/// (``downAfter``) so that a failover takes seconds. ``stop()`` ends every process it
/// started, restarted ones included.
public final class RedisSentinelSetup: Sendable {
    public static let masterName = "chat"
    /// Sentinel's `down-after-milliseconds`. At 1000, with the whole suite running, a
    /// sentinel that had just switched to a new primary judged it down within a second of
    /// reconnecting (its first answer came late) and failed a live primary over: the nodes
    /// went on appending to it, its other replica acknowledging, until the switch reached
    /// them, and those lines were gone with it (CLUSTER.md says what Sentinel cannot promise
    /// there). Two seconds makes such a stall rarer; a failover takes a second longer.
    public static let downAfter = Duration.seconds(2)
    /// Sentinel's `failover-timeout`: a sentinel does not fail the same primary over again
    /// within twice this, and one whose failover times out switches to the replica it
    /// promoted then, however stale; a test that kills primaries in a row waits it out.
    public static let failoverTimeout = Duration.seconds(3)

    /// The servers by their role at the start (the primary, then its replicas): which is
    /// primary now, the sentinels say.
    public let servers: [RedisServerProcess]
    public var first: RedisServerProcess { servers[0] }
    public var second: RedisServerProcess { servers[1] }
    public let sentinels: [RedisSentinelProcess]
    /// The proxy the replica's replication runs through, when asked for.
    public let replicationProxy: StallProxy?
    /// The servers' password and the sentinels' own, when the setup has them.
    public let dataPassword: String?
    public let sentinelPassword: String?
    /// Servers started again by the test (``restart(_:)``), stopped with the rest.
    private let restarted = NIOLockedValueBox<[RedisServerProcess]>([])

    private init(
        servers: [RedisServerProcess], sentinels: [RedisSentinelProcess],
        replicationProxy: StallProxy?, dataPassword: String?, sentinelPassword: String?
    ) {
        self.dataPassword = dataPassword
        self.sentinelPassword = sentinelPassword
        self.servers = servers
        self.sentinels = sentinels
        self.replicationProxy = replicationProxy
    }

    /// What a chat node is given to reach this deployment.
    public var environment: [String: String] {
        [
            "CLUSTER_REDIS_URL": "",
            "CLUSTER_REDIS_SENTINELS": sentinels.map { "127.0.0.1:\($0.port)" }.joined(separator: ","),
            "CLUSTER_REDIS_MASTER_NAME": Self.masterName,
            "REDIS_PASSWORD": dataPassword ?? "",
            "REDIS_SENTINEL_PASSWORD": sentinelPassword ?? "",
        ]
    }

    /// Starts the primary, its replicas (the first replicating through a ``StallProxy`` when
    /// `replicationThroughProxy`), and the sentinels, and waits until every sentinel knows
    /// the replicas and the other two.
    /// - Parameters:
    ///   - replicas: 1 or 2. With two, a failover leaves the new primary a replica, and the
    ///     chat goes on before the old primary is back.
    ///   - dataPassword: `requirepass` (and `masterauth`) of the primary and the replicas.
    ///   - sentinelPassword: the sentinels' own `requirepass`.
    ///   - replicaPriorities: each replica's `replica-priority`, in order (Sentinel promotes
    ///     the lowest first, whatever the replicas hold); Redis's default when not given.
    public static func started(
        replicas: Int = 1, replicationThroughProxy: Bool = false, dataPassword: String? = nil,
        sentinelPassword: String? = nil, replicaPriorities: [Int] = []
    ) async throws -> RedisSentinelSetup {
        precondition((1...2).contains(replicas), "one or two replicas")
        precondition(replicaPriorities.count <= replicas, "a priority per replica at most")
        let auth = dataPassword.map { ["--requirepass", $0, "--masterauth", $0] } ?? []
        // A replica that connects is sent the data at once, not after the 5 s Redis waits
        // by default for others to share the transfer: the chat waits for it.
        let common = ["--appendonly", "yes", "--repl-diskless-sync-delay", "0"] + auth
        let first = try await RedisServerProcess.started(common)
        var servers = [first]
        var proxy: StallProxy?
        var sentinels: [RedisSentinelProcess] = []
        do {
            if replicationThroughProxy { proxy = try await StallProxy.start(to: first.port) }
            for index in 0..<replicas {
                let upstream = index == 0 ? proxy?.port ?? first.port : first.port
                let priority =
                    replicaPriorities.indices.contains(index)
                    ? ["--replica-priority", "\(replicaPriorities[index])"] : []
                let replica = try await RedisServerProcess.started(
                    common + ["--replicaof", "127.0.0.1", "\(upstream)"] + priority)
                servers.append(replica)
                try await waitUntilReplicating(port: replica.port, password: dataPassword)
            }
            for _ in 0..<3 {
                sentinels.append(
                    try await RedisSentinelProcess.started(
                        watching: first.port, name: masterName, dataPassword: dataPassword,
                        sentinelPassword: sentinelPassword))
            }
            let setup = RedisSentinelSetup(
                servers: servers, sentinels: sentinels, replicationProxy: proxy,
                dataPassword: dataPassword, sentinelPassword: sentinelPassword)
            try await setup.waitUntilSentinelsKnowEachOther()
            return setup
        } catch {
            for sentinel in sentinels { sentinel.kill() }
            for server in servers.reversed() { server.kill() }
            proxy?.stop()
            throw error
        }
    }

    /// Waits (bounded) until the server at `port` replicates with its link up (from the
    /// server at `primary`, when given).
    public static func waitUntilReplicating(
        port: Int, from primary: Int? = nil, password: String? = nil, timeout: Duration = .seconds(20)
    ) async throws {
        let up = try await poll(every: .milliseconds(100), timeout: timeout) {
            guard let info = try await ask(port: port, password: password, ["INFO", "replication"])?.string else {
                return false
            }
            return info.contains("master_link_status:up")
                && primary.map { info.contains("master_port:\($0)\r\n") } ?? true
        }
        guard up else {
            let role = try await ask(port: port, password: password, ["INFO", "replication"])?.string
            throw TestFailure("the Redis at \(port) does not replicate: \(role ?? "no answer")")
        }
    }

    /// Waits until each sentinel knows a replica and the two other sentinels: before that, a
    /// failover could not happen.
    private func waitUntilSentinelsKnowEachOther() async throws {
        for sentinel in sentinels {
            let ready = try await poll(every: .milliseconds(100), timeout: .seconds(20)) {
                guard
                    case .array(let replicas) = try await Self.ask(
                        port: sentinel.port, password: sentinelPassword, ["SENTINEL", "REPLICAS", Self.masterName]),
                    case .array(let others) = try await Self.ask(
                        port: sentinel.port, password: sentinelPassword, ["SENTINEL", "SENTINELS", Self.masterName])
                else { return false }
                return replicas.count >= servers.count - 1 && others.count == 2
            }
            guard ready else {
                throw TestFailure("sentinel \(sentinel.port) did not meet the others: \(sentinel.logText)")
            }
        }
    }

    /// The port of the primary the first sentinel that answers names.
    public func primaryPort() async throws -> Int? {
        for sentinel in sentinels {
            if case .array(let parts) = try await Self.ask(
                port: sentinel.port, password: sentinelPassword,
                ["SENTINEL", "GET-MASTER-ADDR-BY-NAME", Self.masterName]),
                parts.count == 2, let port = parts[1].string.flatMap({ Int($0) })
            {
                return port
            }
        }
        return nil
    }

    /// Waits (bounded) until every sentinel names the primary at `port`.
    public func waitForPrimary(port: Int, timeout: Duration = .seconds(30)) async throws {
        let switched = try await poll(every: .milliseconds(50), timeout: timeout) {
            for sentinel in sentinels {
                guard
                    case .array(let parts) = try await Self.ask(
                        port: sentinel.port, password: sentinelPassword,
                        ["SENTINEL", "GET-MASTER-ADDR-BY-NAME", Self.masterName]),
                    parts.count == 2, parts[1].string == "\(port)"
                else { return false }
            }
            return true
        }
        guard switched else { throw TestFailure("the sentinels did not name \(port) the primary in \(timeout)") }
    }

    /// Brings a killed primary back as the replica of `primary`, and waits (bounded) until
    /// the servers are a set again: the sentinels all name one of them the primary, and each
    /// of the others replicates from it, so the next failover has a replica to promote.
    /// It comes back with `replica-priority 0`, raised to Redis's default once it has
    /// synced, as OPERATIONS.md tells operators: Sentinel does not look at a link that never
    /// came up, and twice (the whole suite running, Sentinel 7.0) a sentinel that wrongly
    /// judged the new primary down promoted the server just brought back, seconds after its
    /// restart and before it had synced; the log was gone with its stale data, lines users
    /// had seen with it. If no set forms, the error says why: the servers' replication
    /// state, the restarted one's log, and each sentinel's view and log.
    /// - Parameter others: the servers still running besides `primary`.
    /// - Returns: which is the primary now, and the replicas.
    public func bringBack(
        _ server: RedisServerProcess, asReplicaOf primary: RedisServerProcess, others: [RedisServerProcess] = [],
        timeout: Duration = .seconds(30)
    ) async throws -> (primary: RedisServerProcess, replicas: [RedisServerProcess]) {
        let back = try await restart(server, asReplicaOf: primary.port, arguments: ["--replica-priority", "0"])
        let all = [primary, back] + others
        var formed: (primary: RedisServerProcess, replicas: [RedisServerProcess])?
        _ = try await poll(every: .milliseconds(100), timeout: timeout) {
            formed = try await replicationFormed(among: all)
            return formed != nil
        }
        if let formed {
            _ = try await Self.ask(
                port: back.port, password: dataPassword, ["CONFIG", "SET", "replica-priority", "100"])
            return formed
        }
        var report: [String] = []
        for redis in all {
            let info = try await Self.ask(port: redis.port, password: dataPassword, ["INFO", "replication"])?.string
            report.append("--- \(redis.port) ---\n\(info ?? "no answer")")
        }
        report.append("--- the log of \(back.port) ---\n\(back.logText.suffix(4_000))")
        for sentinel in sentinels {
            let master = try await Self.ask(
                port: sentinel.port, password: sentinelPassword,
                ["SENTINEL", "GET-MASTER-ADDR-BY-NAME", Self.masterName])
            report.append(
                "--- sentinel \(sentinel.port): names \(master.map { "\($0)" } ?? "nothing") ---\n"
                    + sentinel.logText.suffix(3_000))
        }
        throw TestFailure(
            "the restarted Redis at \(back.port) and the others did not become a primary and its replicas in \(timeout)\n"
                + report.joined(separator: "\n"))
    }

    /// The servers as a primary every sentinel names and replicas whose link to it is up,
    /// or `nil` while they are not.
    private func replicationFormed(
        among servers: [RedisServerProcess]
    ) async throws -> (primary: RedisServerProcess, replicas: [RedisServerProcess])? {
        guard let port = try await agreedPrimaryPort(), let primary = servers.first(where: { $0.port == port })
        else { return nil }
        let replicas = servers.filter { $0.port != port }
        for replica in replicas {
            guard
                let info = try await Self.ask(port: replica.port, password: dataPassword, ["INFO", "replication"])?
                    .string,
                info.contains("master_link_status:up"), info.contains("master_port:\(port)\r\n")
            else { return nil }
        }
        return (primary, replicas)
    }

    /// The primary's port when every sentinel names the same one.
    private func agreedPrimaryPort() async throws -> Int? {
        var named: Set<String> = []
        for sentinel in sentinels {
            guard
                case .array(let parts) = try await Self.ask(
                    port: sentinel.port, password: sentinelPassword,
                    ["SENTINEL", "GET-MASTER-ADDR-BY-NAME", Self.masterName]),
                parts.count == 2, let port = parts[1].string
            else { return nil }
            named.insert(port)
        }
        return named.count == 1 ? named.first.flatMap { Int($0) } : nil
    }

    /// Waits (bounded) until every sentinel names a primary other than `gone` among
    /// `candidates`.
    public func waitForNewPrimary(
        after gone: RedisServerProcess, among candidates: [RedisServerProcess], timeout: Duration = .seconds(30)
    ) async throws -> RedisServerProcess {
        var named: RedisServerProcess?
        _ = try await poll(every: .milliseconds(50), timeout: timeout) {
            let port = try await agreedPrimaryPort()
            named = candidates.first { $0.port == port && $0.port != gone.port }
            return named != nil
        }
        guard let named else { throw TestFailure("the sentinels named no new primary in \(timeout)") }
        return named
    }

    /// Starts a stopped or killed server again with its data: as it was (a primary still
    /// believing it is one, until Sentinel tells it otherwise), or, given the primary's
    /// port, as that one's replica, as a configuration Sentinel rewrote would start it.
    public func restart(
        _ server: RedisServerProcess, asReplicaOf primary: Int? = nil, arguments: [String] = []
    ) async throws
        -> RedisServerProcess
    {
        let again = try await server.startedAgain(
            (primary.map { ["--replicaof", "127.0.0.1", "\($0)"] } ?? []) + arguments)
        restarted.withLockedValue { $0.append(again) }
        return again
    }

    /// One command to the server at `port` on a connection of its own; `nil` when it cannot
    /// be reached or answers an error.
    public static func ask(port: Int, password: String? = nil, _ command: [String]) async throws -> RESPValue? {
        guard
            let connection = try? await RedisConnection.connect(
                .init(port: port, password: password, connectTimeout: .seconds(1), commandTimeout: .seconds(2)))
        else { return nil }
        let answer = try? await connection.send(RESPCommand(command))
        await connection.close()
        return answer
    }

    /// The hub log on the primary the sentinels name: the entries in it, and all it ever
    /// took (`XINFO STREAM`); `nil` when there is no primary or no log.
    public func hubLogLength() async throws -> (length: Int64, added: Int64)? {
        guard let port = try await primaryPort(),
            case .map(let info) = try await Self.ask(
                port: port, password: dataPassword, ["XINFO", "STREAM", "{chat}:log"])
        else { return nil }
        func field(_ name: String) -> Int64? {
            guard case .integer(let value) = info.first(where: { $0.key.string == name })?.value else { return nil }
            return value
        }
        guard let length = field("length"), let added = field("entries-added") else { return nil }
        return (length, added)
    }

    /// Waits (bounded) until the hub log on the primary holds fewer entries than it took
    /// (trimmed behind a snapshot); returns what it saw last.
    public func hubLogOnceTrimmed(timeout: Duration) async throws -> (length: Int64, added: Int64)? {
        let trimmed = try await poll(every: .milliseconds(500), timeout: timeout) {
            () -> (length: Int64, added: Int64)? in
            guard let log = try await hubLogLength(), log.length < log.added else { return nil }
            return log
        }
        if let trimmed { return trimmed }
        return try await hubLogLength()
    }

    /// Runs `body`; when it throws, prints what the sentinels and servers logged first (who
    /// was promoted when, and why), which a failover test's own failure cannot tell.
    public func printingLogsOnFailure(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            for sentinel in sentinels {
                print("--- sentinel \(sentinel.port) log ---\n\(sentinel.logText.suffix(12_000))")
            }
            for server in servers + restarted.withLockedValue({ $0 }) {
                print("--- redis \(server.port) log ---\n\(server.logText.suffix(6_000))")
            }
            throw error
        }
    }

    public func stop() {
        for sentinel in sentinels { sentinel.kill() }
        for server in restarted.withLockedValue({ $0 }) { server.kill() }
        for server in servers.dropFirst() { server.kill() }
        replicationProxy?.stop()
        first.kill()
    }
}

/// A real Redis Sentinel (Debian's `redis-sentinel`) on a free loopback port, watching one
/// primary.
public final class RedisSentinelProcess: Sendable {
    public let port: Int
    private let process: SpawnedProcess
    private let folder: URL

    private init(port: Int, process: SpawnedProcess, folder: URL) {
        self.port = port
        self.process = process
        self.folder = folder
    }

    public static var executable: String? {
        ["/usr/bin/redis-sentinel", "/usr/local/bin/redis-sentinel"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    /// Starts a sentinel watching the primary at `primaryPort` as `name` (quorum two, down
    /// after a second), and waits until it monitors it; a fresh port each try (up to three).
    public static func started(
        watching primaryPort: Int, name: String, dataPassword: String? = nil, sentinelPassword: String? = nil
    ) async throws -> RedisSentinelProcess {
        guard let executable else {
            throw TestFailure("redis-sentinel is not installed (scripts/test.sh installs it)")
        }
        var failure: (any Error)?
        for _ in 0..<3 {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sentinel-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let port = try RedisServerProcess.freePort()
            // Sentinel rewrites its own file as it learns: it must be writable.
            let configuration = """
                port \(port)
                bind 127.0.0.1
                dir \(folder.path)
                sentinel monitor \(name) 127.0.0.1 \(primaryPort) 2
                sentinel down-after-milliseconds \(name) \(Int(RedisSentinelSetup.downAfter.components.seconds * 1000))
                sentinel failover-timeout \(name) \(Int(RedisSentinelSetup.failoverTimeout.components.seconds * 1000))
                sentinel parallel-syncs \(name) 1
                \(dataPassword.map { "sentinel auth-pass \(name) \($0)" } ?? "")
                \(sentinelPassword.map { "requirepass \($0)\nsentinel sentinel-pass \($0)" } ?? "")

                """
            let file = folder.appendingPathComponent("sentinel.conf")
            try configuration.write(to: file, atomically: true, encoding: .utf8)
            let log = folder.appendingPathComponent("sentinel.log")
            let process = try SpawnedProcess(executable, [file.path], output: log.path)
            let sentinel = RedisSentinelProcess(port: port, process: process, folder: folder)
            let ready = try await poll(every: .milliseconds(50), timeout: .seconds(10)) {
                sentinel.logText.contains("+monitor master")
            }
            if ready { return sentinel }
            failure = TestFailure("redis-sentinel did not start on \(port): \(sentinel.logText)")
            sentinel.kill()
        }
        throw failure!
    }

    public var logText: String {
        (try? String(contentsOf: folder.appendingPathComponent("sentinel.log"), encoding: .utf8)) ?? ""
    }

    public func kill() {
        process.signal(SIGKILL)
        process.wait()
    }

    deinit {
        try? FileManager.default.removeItem(at: folder)
    }
}
