/// At most `limit` events per `window` for each key (a sliding window over the event
/// times), e.g. "5 codes per address per hour" or "30 connections per IP per minute".
///
/// Memory is bounded by the keys seen within one window; ``sweep(now:)`` drops the rest.
public struct RateLimit<Key: Hashable>: Sendable where Key: Sendable {
    private enum CodingKeys: String, CodingKey { case limit, window, events }

    public let limit: Int
    public let window: Duration
    private var events: [Key: EventTimes] = [:]

    public init(limit: Int, per window: Duration) {
        precondition(limit >= 1)
        self.limit = limit
        self.window = window
    }

    /// - Returns: `nil` when another event for `key` is allowed now, else how long until it is.
    public func retryAfter(_ key: Key, now: LogTime) -> Duration? {
        guard let times = events[key] else { return nil }
        guard times.count(inWindow: window, now: now) >= limit else { return nil }
        // The oldest event still in the window leaves it first.
        return window - (now - times.newest(limit))
    }

    /// Counts an event for `key`.
    public mutating func record(_ key: Key, now: LogTime) {
        events[key, default: EventTimes()].record(now, window: window, keeping: limit)
    }

    /// Takes back the latest event counted for `key`, as if it had not happened (a code
    /// that was asked for and then used to log in is no sign of abuse).
    public mutating func forgetLatest(_ key: Key) {
        guard var times = events[key], !times.isEmpty else { return }
        times.removeLatest()
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
        events = events.filter { _, times in times.count(inWindow: window, now: now) > 0 }
    }

    /// How many keys are tracked.
    public var count: Int { events.count }
}

/// One key's event times, oldest first. A server-wide limit is one key with as many times as
/// the limit allows (a million codes a minute, say), so no step may walk them all: the
/// window's start is found by binary search, and times that left it are dropped by moving a
/// start index, the array compacted only once they are half of it.
private struct EventTimes: Sendable {
    private var times: [LogTime] = []
    private var start = 0

    init() {}

    /// From a snapshot: any order is put right.
    init(_ times: [LogTime]) {
        self.times = times.sorted()
    }

    var isEmpty: Bool { start == times.count }

    /// The times still counted, oldest first.
    var live: ArraySlice<LogTime> { times[start...] }

    func count(inWindow window: Duration, now: LogTime) -> Int {
        times.count - firstIndex(inWindow: window, now: now)
    }

    /// The `n`-th newest time (1: the newest); there are at least `n`.
    func newest(_ n: Int) -> LogTime { times[times.count - n] }

    mutating func record(_ time: LogTime, window: Duration, keeping limit: Int) {
        drop(upTo: firstIndex(inWindow: window, now: time))
        // Times come in order, but a cluster's nodes' clocks may differ by a little.
        if let last = times.last, time < last, start < times.count {
            let index = times[start...].partitioningIndex { time < $0 }
            times.insert(time, at: index)
        } else {
            times.append(time)
        }
        if times.count - start > limit { drop(upTo: times.count - limit) }
    }

    mutating func removeLatest() {
        times.removeLast()
    }

    /// The first time inside the window at `now` (`now - time < window`); times are sorted,
    /// so those inside are a suffix.
    private func firstIndex(inWindow window: Duration, now: LogTime) -> Int {
        times[start...].partitioningIndex { now - $0 < window }
    }

    private mutating func drop(upTo index: Int) {
        start = max(start, index)
        if start == times.count {
            times.removeAll(keepingCapacity: times.count <= 64)
            start = 0
        } else if start >= 32, start * 2 >= times.count {
            times.removeFirst(start)
            start = 0
        }
    }
}

extension ArraySlice {
    /// The first index whose element satisfies `belongs`, given that those that do are a
    /// suffix (binary search); `endIndex` when none does.
    fileprivate func partitioningIndex(where belongs: (Element) -> Bool) -> Index {
        var low = startIndex
        var high = endIndex
        while low < high {
            let middle = low + (high - low) / 2
            if belongs(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}

/// A cluster's snapshot carries the events counted so far.
extension RateLimit: Codable where Key: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            limit: try container.decode(Int.self, forKey: .limit),
            per: try container.decode(Duration.self, forKey: .window))
        events = try container.decode([Key: [LogTime]].self, forKey: .events).mapValues(EventTimes.init)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(limit, forKey: .limit)
        try container.encode(window, forKey: .window)
        try container.encode(events.mapValues { Array($0.live) }, forKey: .events)
    }
}

extension Duration {
    /// Whole seconds, rounded up, at least 1: what a user is told to wait.
    public var roundedUpSeconds: Int {
        let (seconds, attoseconds) = components
        return max(1, Int(seconds) + (attoseconds > 0 ? 1 : 0))
    }
}
