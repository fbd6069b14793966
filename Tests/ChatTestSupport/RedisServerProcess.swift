import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A real `redis-server` (Debian's) on a free loopback port, started for one test and
/// stopped by it.
public final class RedisServerProcess: Sendable {
    public let port: Int
    private let process: SpawnedProcess
    private let folder: URL
    private let arguments: [String]
    private let log: URL
    /// Whether this process's data folder goes when it does (not when a restart took it over).
    private let ownsFolder = NIOLockedValueBox(true)

    public static var executable: String? {
        ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    /// - Parameter arguments: extra settings, e.g. `["--requirepass", "secret"]`.
    public convenience init(port: Int? = nil, _ arguments: [String] = []) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try self.init(port: try port ?? Self.freePort(), folder: folder, arguments)
    }

    private init(port: Int, folder: URL, _ arguments: [String]) throws {
        guard let executable = Self.executable else {
            throw TestFailure("redis-server is not installed (scripts/test.sh installs it)")
        }
        // A log of its own for each start, so a restart waits for its own "ready" line.
        let log = folder.appendingPathComponent("redis-\(UUID().uuidString).log")
        self.process = try SpawnedProcess(
            executable,
            [
                "--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", folder.path,
                "--enable-debug-command", "yes",
            ] + arguments,
            output: log.path)
        self.port = port
        self.folder = folder
        self.arguments = arguments
        self.log = log
    }

    /// Stops this server (SIGTERM: with `--appendonly yes` its data is on disk) and starts
    /// another on the same port and data folder, ready.
    public func restarted() async throws -> RedisServerProcess {
        stop()
        return try await startedAgain()
    }

    /// What this server wrote to its log so far.
    public var logText: String {
        (try? String(contentsOf: log, encoding: .utf8)) ?? ""
    }

    /// Stops this server and starts another on the same port with none of its data, as a
    /// Redis whose disk was lost (or that ran without persistence) comes back.
    public func restartedWithoutData() async throws -> RedisServerProcess {
        stop()
        for name in ["appendonlydir", "dump.rdb"] {
            try? FileManager.default.removeItem(at: folder.appendingPathComponent(name))
        }
        return try await startedAgain()
    }

    /// After ``stop()``: another server on the same port and data folder, ready.
    /// - Parameter extraArguments: settings added to the first start's (a later one wins).
    public func startedAgain(_ extraArguments: [String] = []) async throws -> RedisServerProcess {
        ownsFolder.withLockedValue { $0 = false }
        let next = try RedisServerProcess(port: port, folder: folder, arguments + extraArguments)
        try await next.waitUntilReady()
        return next
    }

    /// Waits (bounded) until the server says it is ready: its log line, not a connection to
    /// the port, which might reach another test's server if that one took the port first.
    public func waitUntilReady(timeout: Duration = .seconds(10)) async throws {
        let ready = try await poll(timeout: timeout) {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            // Ready first: a server that listens may still have failed on another address.
            if text.contains("Ready to accept connections") { return true }
            if text.contains("Could not create server TCP listening socket") {
                throw TestFailure("redis-server could not listen on \(port): \(text)")
            }
            return false
        }
        guard ready else { throw TestFailure("redis-server did not start on \(port)") }
    }

    /// Starts a server and waits until it is ready, on a fresh port each try (up to three):
    /// the port is picked free, but another test may bind it first.
    public static func started(_ arguments: [String] = []) async throws -> RedisServerProcess {
        var failure: (any Error)?
        for _ in 0..<3 {
            let server = try RedisServerProcess(arguments)
            do {
                try await server.waitUntilReady()
                return server
            } catch {
                failure = error
                server.kill()
            }
        }
        throw failure!
    }

    /// Ends the server (SIGTERM) and waits for it.
    public func stop() {
        process.signal(SIGTERM)
        process.wait()
    }

    /// Ends the server at once (SIGKILL), as a crash would.
    public func kill() {
        process.signal(SIGKILL)
        process.wait()
    }

    deinit {
        guard ownsFolder.withLockedValue({ $0 }) else { return }
        try? FileManager.default.removeItem(at: folder)
    }

    public static func freePort() throws -> Int {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? channel.close().wait() }
        guard let port = channel.localAddress?.port else { throw TestFailure("no free port") }
        return port
    }
}
