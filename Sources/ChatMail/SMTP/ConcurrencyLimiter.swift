import NIOConcurrencyHelpers

/// At most `limit` holders at once, at most `maxWaiting` waiting; anyone beyond is
/// refused at once rather than queued without bound.
final class ConcurrencyLimiter: Sendable {
    private struct State {
        var active = 0
        /// Each resumed with `true` when it gets a place.
        var waiters: [CheckedContinuation<Bool, Never>] = []
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
    func run<T: Sendable>(_ body: () async throws -> T) async throws -> T? {
        // Taking a place, joining the queue or being refused is one decision under the
        // lock: decided in two steps, several callers could see the same free queue slot.
        let admitted = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let decision: Bool? = state.withLockedValue { state in
                if state.active < limit {
                    state.active += 1
                    return true
                }
                guard state.waiters.count < maxWaiting else { return false }
                state.waiters.append(continuation)
                return nil
            }
            if let decision { continuation.resume(returning: decision) }
        }
        guard admitted else { return nil }
        defer { release() }
        return try await body()
    }

    /// Hands the place to the first waiter, or frees it.
    private func release() {
        let next = state.withLockedValue { state -> CheckedContinuation<Bool, Never>? in
            if state.waiters.isEmpty {
                state.active -= 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume(returning: true)
    }
}
