import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// Hands out OTP codes from the server's `file` mail transport folder, as users read
/// their inboxes. One background scan of the folder serves every waiting client.
final class MailWatcher: Sendable {
    private struct State {
        var waiting: [String: EventLoopPromise<String>] = [:]
        var arrived: [String: String] = [:]
        var stopped = false
    }

    let directory: String
    private let state = NIOLockedValueBox(State())

    init(directory: String) {
        self.directory = directory
    }

    /// The code for `address`, once its mail is in the folder.
    func code(for address: String, on loop: any EventLoop) -> EventLoopFuture<String> {
        let promise = loop.makePromise(of: String.self)
        let ready: String? = state.withLockedValue { state in
            if let code = state.arrived.removeValue(forKey: address) { return code }
            state.waiting[address] = promise
            return nil
        }
        if let ready { promise.succeed(ready) }
        return promise.futureResult
    }

    /// Scans the folder every few milliseconds until ``stop()``.
    func run() async {
        while !state.withLockedValue({ $0.stopped }) {
            scan()
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    func stop() {
        let waiting = state.withLockedValue { state in
            state.stopped = true
            defer { state.waiting = [:] }
            return Array(state.waiting.values)
        }
        for promise in waiting { promise.fail(BenchError.mail("stopped before the code arrived")) }
    }

    private func scan() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let fresh = names.filter { $0.hasSuffix(".eml") }
        for name in fresh {
            // "<address>-<microseconds>-<random>.eml"
            let parts = name.dropLast(4).split(separator: "-")
            guard parts.count >= 3 else { continue }
            let address = parts.dropLast(2).joined(separator: "-")
            let path = directory + "/" + name
            guard let text = try? String(contentsOfFile: path, encoding: .utf8),
                let range = text.range(of: "code is: ")
            else { continue }
            // A read mail is deleted, so the folder (scanned every few milliseconds) holds
            // only the mails still waiting to be read.
            try? FileManager.default.removeItem(atPath: path)
            let code = String(text[range.upperBound...].prefix(6))
            let promise: EventLoopPromise<String>? = state.withLockedValue { state in
                if let promise = state.waiting.removeValue(forKey: address) { return promise }
                state.arrived[address] = code
                return nil
            }
            promise?.succeed(code)
        }
    }
}
