/// At most `limit` events per `window` for each key (a sliding window over the event
/// times), e.g. "5 codes per address per hour" or "30 connections per IP per minute".
///
/// Memory is bounded by the keys seen within one window; ``sweep(now:)`` drops the rest.
public struct RateLimit<Key: Hashable>: Sendable where Key: Sendable {
    private enum CodingKeys: String, CodingKey { case limit, window, events }

    public let limit: Int
    public let window: Duration
    private var events: [Key: [LogTime]] = [:]

    public init(limit: Int, per window: Duration) {
        precondition(limit >= 1)
        self.limit = limit
        self.window = window
    }

    /// - Returns: `nil` when another event for `key` is allowed now, else how long until it is.
    public func retryAfter(_ key: Key, now: LogTime) -> Duration? {
        guard let times = events[key] else { return nil }
        let recent = times.filter { now - $0 < window }
        guard recent.count >= limit else { return nil }
        // The oldest event still in the window leaves it first.
        return window - (now - recent[recent.count - limit])
    }

    /// Counts an event for `key`.
    public mutating func record(_ key: Key, now: LogTime) {
        var times = events[key, default: []].filter { now - $0 < window }
        times.append(now)
        if times.count > limit { times.removeFirst(times.count - limit) }
        events[key] = times
    }

    /// Takes back the latest event counted for `key`, as if it had not happened (a code
    /// that was asked for and then used to log in is no sign of abuse).
    public mutating func forgetLatest(_ key: Key) {
        guard var times = events[key], !times.isEmpty else { return }
        times.removeLast()
        events[key] = times.isEmpty ? nil : times
    }

    /// Checks and, when allowed, counts in one step.
    /// - Returns: `nil` when the event was allowed and counted, else the wait.
    public mutating func attempt(_ key: Key, now: LogTime) -> Duration? {
        if let wait = retryAfter(key, now: now) { return wait }
        record(key, now: now)
        return nil
    }

    /// Forgets keys with no event inside the window.
    public mutating func sweep(now: LogTime) {
        events = events.filter { _, times in times.contains { now - $0 < window } }
    }

    /// How many keys are tracked.
    public var count: Int { events.count }
}

/// A cluster's snapshot carries the events counted so far.
extension RateLimit: Codable where Key: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            limit: try container.decode(Int.self, forKey: .limit),
            per: try container.decode(Duration.self, forKey: .window))
        events = try container.decode([Key: [LogTime]].self, forKey: .events)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(limit, forKey: .limit)
        try container.encode(window, forKey: .window)
        try container.encode(events, forKey: .events)
    }
}

extension Duration {
    /// Whole seconds, rounded up, at least 1: what a user is told to wait.
    public var roundedUpSeconds: Int {
        let (seconds, attoseconds) = components
        return max(1, Int(seconds) + (attoseconds > 0 ? 1 : 0))
    }
}
