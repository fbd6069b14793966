import ChatTestSupport
import Testing

@testable import ChatServer

@Suite struct MemoryReclaimerTests {
    let start = ContinuousClock.now

    func at(_ seconds: Int) -> ContinuousClock.Instant { start + .seconds(seconds) }

    @Test func aServerWithoutChurnNeverTrims() {
        var reclaimer = MemoryReclaimer()
        var trims = 0
        for tick in 1...20 where reclaimer.shouldTrim(churn: 0, now: at(tick * 10)) { trims += 1 }
        #expect(trims == 0)
    }

    @Test func churnIsTrimmedOnceItHasStoppedForOnePeriod() {
        var reclaimer = MemoryReclaimer()
        let ticks: [(churn: UInt64, seconds: Int)] = [
            (500, 10),  // logins under way
            (900, 20),  // still coming
            (900, 30),  // quiet for a period: trim
            (900, 40),  // only once
            (901, 50),  // one more connection
            (901, 60),  // quiet again: trim
        ]
        let decisions = ticks.map { reclaimer.shouldTrim(churn: $0.churn, now: at($0.seconds)) }
        #expect(decisions == [false, false, true, false, false, true])
    }

    @Test func constantChurnIsTrimmedAtMostOncePerMaximumDelay() {
        var reclaimer = MemoryReclaimer()
        var trims: [Int] = []
        for tick in 1...20 where reclaimer.shouldTrim(churn: UInt64(tick), now: at(tick * 10)) {
            trims.append(tick * 10)
        }
        #expect(trims == [70, 140])
    }

    @Test func theServerTrimsAfterChurnAndNotWithout() async throws {
        try await withTestServer(configure: { $0.memoryReclaimPeriod = .milliseconds(100) }) { server in
            // Five quiet periods with nobody connecting: no trim. (The reclaimer's own timer
            // runs in real time; the pause is those periods passing.)
            try await Task.sleep(for: .milliseconds(500))
            #expect(!server.log.text.contains(Self.trimmed))
            // Churn, then quiet: one trim.
            for index in 0..<3 { await (try await server.login("churn\(index)")).close() }
            _ = try await server.waitForOccupancy { $0.connections == 0 }
            #expect(
                try await poll(every: .milliseconds(50), timeout: .seconds(10)) {
                    server.log.text.contains(Self.trimmed)
                })
        }
    }

    static let trimmed = "Returned free memory to the system"

    @Test func trimmingReturnsFreedPagesToTheSystem() {
        // Holes between live blocks are what churn leaves behind: free, but not at the
        // top of the heap, so only malloc_trim can give their pages back.
        var live: [UnsafeMutableRawPointer] = []
        var holes: [UnsafeMutableRawPointer] = []
        live.reserveCapacity(512)
        holes.reserveCapacity(512)
        for _ in 0..<512 {
            holes.append(UnsafeMutableRawPointer.allocate(byteCount: 16_384, alignment: 16))
            live.append(UnsafeMutableRawPointer.allocate(byteCount: 16_384, alignment: 16))
        }
        for block in holes {
            block.storeBytes(of: 1, as: UInt8.self)
            block.deallocate()
        }
        // Under a sanitizer (CI's ThreadSanitizer run) the allocator is not glibc's, and
        // trimming must then report that it returned nothing.
        #expect(MemoryReclaimer.trim() == MemoryReclaimer.canTrim)
        for block in live { block.deallocate() }
    }
}
