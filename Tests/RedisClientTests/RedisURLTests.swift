import Testing

@testable import RedisClient

@Suite struct RedisURLTests {
    @Test func theFormsOfARedisURL() throws {
        let plain = try RedisURL(parsing: "redis://127.0.0.1:6380")
        #expect(plain.host == "127.0.0.1" && plain.port == 6380 && !plain.usesTLS)
        #expect(plain.username == nil && plain.password == nil && plain.database == nil)

        let full = try RedisURL(parsing: "rediss://chat:s%40cret@redis.example.com:6390/2")
        #expect(full.usesTLS && full.host == "redis.example.com" && full.port == 6390 && full.database == 2)
        #expect(full.username == "chat" && full.password == "s@cret")

        let passwordOnly = try RedisURL(parsing: "redis://:pw@localhost")
        #expect(passwordOnly.username == nil && passwordOnly.password == "pw" && passwordOnly.port == 6379)

        let ipv6 = try RedisURL(parsing: "redis://[::1]:7000/")
        #expect(ipv6.host == "::1" && ipv6.port == 7000 && ipv6.database == nil)
    }

    @Test func aWrongURLSaysWhatIsWrong() {
        #expect(throws: RedisURL.ParseError.scheme) { try RedisURL(parsing: "http://localhost") }
        #expect(throws: RedisURL.ParseError.host) { try RedisURL(parsing: "redis://:6379") }
        #expect(throws: RedisURL.ParseError.port) { try RedisURL(parsing: "redis://localhost:http") }
        #expect(throws: RedisURL.ParseError.port) { try RedisURL(parsing: "redis://localhost:70000") }
        #expect(throws: RedisURL.ParseError.database) { try RedisURL(parsing: "redis://localhost/x") }
    }

    @Test func theDescriptionNeverShowsThePassword() throws {
        #expect("\(try RedisURL(parsing: "redis://chat:hunter2@h:1/3"))" == "redis://chat:***@h:1/3")
        #expect("\(try RedisURL(parsing: "rediss://:hunter2@h"))" == "rediss://:***@h:6379")
        #expect("\(try RedisURL(parsing: "redis://[::1]:7000"))" == "redis://[::1]:7000")
    }
}

@Suite struct ReconnectBackoffTests {
    /// A fixed sequence of numbers, so the delays can be checked exactly.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state
        }
    }

    @Test func delaysGrowWithJitterUpToTheCapAndStartAgainAfterASuccess() {
        var backoff = ReconnectBackoff(initial: .milliseconds(100), maximum: .seconds(2))
        var random = SeededGenerator(state: 42)
        var ceilings: [Duration] = []
        var delays: [Duration] = []
        for attempt in 0..<8 {
            let ceiling = min(.seconds(2), Duration.milliseconds(100) * (1 << attempt))
            ceilings.append(ceiling)
            delays.append(backoff.nextDelay(using: &random))
        }
        for (delay, ceiling) in zip(delays, ceilings) {
            #expect(delay >= ceiling / 2 && delay <= ceiling, "\(delay) for a ceiling of \(ceiling)")
        }
        // Two nodes that failed together do not retry in step.
        var other = ReconnectBackoff(initial: .milliseconds(100), maximum: .seconds(2))
        var otherRandom = SeededGenerator(state: 7)
        let otherDelays = (0..<8).map { _ in other.nextDelay(using: &otherRandom) }
        #expect(otherDelays != delays)

        backoff.reset()
        let afterReset = backoff.nextDelay(using: &random)
        #expect(afterReset >= .milliseconds(50) && afterReset <= .milliseconds(100))
    }
}
