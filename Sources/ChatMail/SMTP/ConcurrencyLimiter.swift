import NIOConcurrencyHelpers

/// At most `limit` holders at once, at most `maxWaiting` waiting; anyone beyond is
/// refused at once rather than queued without bound.
final class ConcurrencyLimiter: Sendable {
    private struct State {
        var active = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let limit: Int
    private let maxWaiting: Int
    private let state = NIOLockedValueBox(State())

    init(limit: Int, maxWaiting: Int) {
        precondition(limit > 0 && maxWaiting >= 0)
        self.limit = limit
        self.maxWaiting = maxWaiting
    }

    /// Runs `body` once a place is free.
    /// - Returns: `nil` when the queue is full and `body` did not run.
    private enum Entry { case now, wait, refuse }

    func run<T: Sendable>(_ body: () async throws -> T) async throws -> T? {
        let entry: Entry = state.withLockedValue { state in
            if state.active < limit {
                state.active += 1
                return .now
            }
            return state.waiters.count < maxWaiting ? .wait : .refuse
        }
        switch entry {
        case .refuse:
            return nil
        case .wait:
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLockedValue { state -> Bool in
                    // A place may have freed up between the check and here.
                    if state.active < limit {
                        state.active += 1
                        return true
                    }
                    state.waiters.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        case .now:
            break
        }
        defer { release() }
        return try await body()
    }

    /// Hands the place to the first waiter, or frees it.
    private func release() {
        let next = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.active -= 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}
