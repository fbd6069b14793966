import NIOConcurrencyHelpers
import Testing

@testable import ChatMail

@Suite struct ConcurrencyLimiterTests {
    /// Counts holders at once and the most ever seen.
    final class Gauge: Sendable {
        private let state = NIOLockedValueBox((running: 0, peak: 0))
        func enter() {
            state.withLockedValue {
                $0.running += 1
                $0.peak = max($0.peak, $0.running)
            }
        }
        func leave() { state.withLockedValue { $0.running -= 1 } }
        var peak: Int { state.withLockedValue { $0.peak } }
    }

    @Test func boundsHoldersAndRefusesBeyondTheQueue() async throws {
        let limiter = ConcurrencyLimiter(limit: 2, maxWaiting: 1)
        let gauge = Gauge()
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    let ran: Void? = try await limiter.run {
                        gauge.enter()
                        try await Task.sleep(for: .milliseconds(200))  // Holds the slot, as a mail being sent.
                        gauge.leave()
                    }
                    return ran != nil
                }
            }
            var results: [Bool] = []
            for try await result in group { results.append(result) }
            return results
        }
        // 2 run at once, 1 waits, 3 are refused at once.
        #expect(results.filter { $0 }.count == 3)
        #expect(gauge.peak == 2)
    }
}
