import Foundation
import NIOConcurrencyHelpers

/// The proxy of `Tests/Fixtures/stall_proxy.py` in front of a local port: ``stall()`` stops
/// every byte in both directions without closing anything (a network partition),
/// ``deafenNewestConnection()`` stops only what the newest connection receives, and
/// ``resume()`` lets everything through again. Each returns once the proxy says it took
/// effect: a signal alone is taken whenever the proxy gets to it, and on a loaded machine
/// bytes sent after ``stall()`` returned went through (a Sentinel test's "never
/// replicated" line reached the replica that way, and was rightly delivered).
public final class StallProxy: Sendable {
    public let port: Int
    private let process: SpawnedProcess
    private let log: URL
    /// Signals sent so far: the proxy counts those it handled alike.
    private let signalsSent = NIOLockedValueBox(0)

    private init(port: Int, process: SpawnedProcess, log: URL) {
        self.port = port
        self.process = process
        self.log = log
    }

    /// Starts a proxy to `targetPort` on 127.0.0.1 and waits until it listens.
    public static func start(to targetPort: Int) async throws -> StallProxy {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/stall_proxy.py").path
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("stall-proxy-\(UUID().uuidString).log")
        let process = try SpawnedProcess(
            "/usr/bin/env", ["python3", script, "--target-port", "\(targetPort)"], output: log.path)
        let listening = try await poll(every: .milliseconds(20), timeout: .seconds(10)) { () -> Int? in
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            guard let range = text.range(of: #"READY (\d+)"#, options: .regularExpression) else { return nil }
            return Int(text[range].dropFirst(6))
        }
        if let listening { return StallProxy(port: listening, process: process, log: log) }
        process.signal(SIGKILL)
        _ = process.wait()
        throw TestFailure("the stall proxy did not start: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
    }

    public func stall() async throws { try await signal(SIGUSR1) }

    public func deafenNewestConnection() async throws { try await signal(SIGHUP) }

    public func resume() async throws { try await signal(SIGUSR2) }

    /// Sends `number` and waits (bounded) until the proxy says it handled it.
    private func signal(_ number: Int32) async throws {
        let count = signalsSent.withLockedValue { sent in
            sent += 1
            return sent
        }
        process.signal(number)
        let handled = try await poll(every: .milliseconds(10), timeout: .seconds(10)) {
            ((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("HANDLED \(count)\n")
        }
        guard handled else { throw TestFailure("the stall proxy did not handle signal \(number)") }
    }

    public func stop() {
        process.signal(SIGTERM)
        _ = process.wait()
        try? FileManager.default.removeItem(at: log)
    }
}
