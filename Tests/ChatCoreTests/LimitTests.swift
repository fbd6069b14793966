import Foundation
import Testing

@testable import ChatCore

@Suite struct LimitTests {
    let start = ContinuousClock.now
    let logStart = LogTime(milliseconds: 1_700_000_000_000)

    @Test func tokenBucketAllowsABurstThenTheRate() {
        var bucket = TokenBucket(burst: 3, perSecond: 2, now: start)
        for _ in 0..<3 { #expect(bucket.take(now: start) == nil) }
        let wait = bucket.take(now: start)
        #expect(wait == .milliseconds(500))
        #expect(bucket.take(now: start + .milliseconds(500)) == nil)
        #expect(bucket.take(now: start + .milliseconds(500)) != nil)
        // Refills up to the burst, not beyond.
        for _ in 0..<3 { #expect(bucket.take(now: start + .seconds(100)) == nil) }
        #expect(bucket.take(now: start + .seconds(100)) != nil)
    }

    @Test func rateLimitForgetsTheLatestEventOfOneKey() {
        var limit = RateLimit<String>(limit: 2, per: .seconds(60))
        #expect(limit.attempt("a", now: logStart) == nil)
        #expect(limit.attempt("a", now: logStart + .seconds(10)) == nil)
        #expect(limit.retryAfter("a", now: logStart + .seconds(20)) != nil)
        limit.forgetLatest("a")
        #expect(limit.retryAfter("a", now: logStart + .seconds(20)) == nil)
        // The earlier event still counts: one more is allowed, not two.
        #expect(limit.attempt("a", now: logStart + .seconds(20)) == nil)
        #expect(limit.attempt("a", now: logStart + .seconds(30)) == .seconds(30))
        limit.forgetLatest("a")
        limit.forgetLatest("a")
        limit.forgetLatest("a")
        #expect(limit.count == 0)
        limit.forgetLatest("b")
        #expect(limit.count == 0)
    }

    @Test func rateLimitCountsPerKeyInASlidingWindow() {
        var limit = RateLimit<String>(limit: 2, per: .seconds(60))
        #expect(limit.attempt("a", now: logStart) == nil)
        #expect(limit.attempt("a", now: logStart + .seconds(10)) == nil)
        #expect(limit.attempt("a", now: logStart + .seconds(20)) == .seconds(40))
        #expect(limit.attempt("b", now: logStart + .seconds(20)) == nil)
        #expect(limit.attempt("a", now: logStart + .seconds(60)) == nil)
        #expect(limit.count == 2)
        limit.sweep(now: logStart + .seconds(200))
        #expect(limit.count == 0)
    }

    /// A server-wide limit is one key holding up to `limit` times: against the plain
    /// definition (filter the window, count), over a long run of events that come and leave,
    /// some with a clock a little behind, with takebacks and a snapshot halfway.
    @Test func aLargeWindowAnswersAsTheDefinitionSays() throws {
        var limit = RateLimit<Int>(limit: 300, per: .seconds(60))
        var model: [LogTime] = []
        var random = SystemRandomNumberGenerator()
        var now = logStart
        for step in 0..<8_000 {
            now = now + .milliseconds(Int64.random(in: 0...20, using: &random))
            // Now and then an event from a node whose clock is up to 50 ms behind.
            let time = step % 97 == 0 ? now - .milliseconds(Int64.random(in: 1...50, using: &random)) : now
            let recent = model.filter { time - $0 < .seconds(60) }.sorted()
            let expected: Duration? =
                recent.count >= 300 ? .seconds(60) - (time - recent[recent.count - 300]) : nil
            #expect(limit.retryAfter(0, now: time) == expected, "step \(step)")
            if expected == nil {
                limit.record(0, now: time)
                model = Array((recent + [time]).sorted().suffix(300))
            }
            if step % 1_001 == 0, let latest = model.indices.max(by: { model[$0] < model[$1] }) {
                limit.forgetLatest(0)
                model.remove(at: latest)
            }
            if step == 4_000 {
                let data = try JSONEncoder().encode(limit)
                limit = try JSONDecoder().decode(RateLimit<Int>.self, from: data)
            }
        }
        // A sweep well after the last event forgets the key.
        limit.sweep(now: now + .seconds(61))
        #expect(limit.count == 0)
    }

    @Test func waitsAreRoundedUpToWholeSeconds() {
        #expect(Duration.milliseconds(1).roundedUpSeconds == 1)
        #expect(Duration.milliseconds(29_001).roundedUpSeconds == 30)
        #expect(Duration.seconds(30).roundedUpSeconds == 30)
    }

    @Test func reservedUsernames() {
        let rules = UsernameRules()
        #expect(rules.violation(in: "Admin") == .reserved("Admin"))
        #expect(rules.violation(in: "root") == .reserved("root"))
        #expect(rules.violation(in: "rooted") == nil)
    }
}
