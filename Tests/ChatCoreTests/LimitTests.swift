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
