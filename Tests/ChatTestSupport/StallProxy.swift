import Foundation

/// The proxy of `Tests/Fixtures/stall_proxy.py` in front of a local port: ``stall()`` stops
/// every byte in both directions without closing anything (a network partition),
/// ``deafenNewestConnection()`` stops only what the newest connection receives, and
/// ``resume()`` lets everything through again.
public final class StallProxy: Sendable {
    public let port: Int
    private let process: SpawnedProcess
    private let log: URL

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

    public func stall() { process.signal(SIGUSR1) }

    public func deafenNewestConnection() { process.signal(SIGHUP) }

    public func resume() { process.signal(SIGUSR2) }

    public func stop() {
        process.signal(SIGTERM)
        _ = process.wait()
        try? FileManager.default.removeItem(at: log)
    }
}
