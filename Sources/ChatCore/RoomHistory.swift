/// A room's recent lines, for replay to people who join: at most `capacity` lines, none
/// older than `window`.
///
/// Generic over the stored line so that the server can keep the already encoded bytes
/// (replay then costs a retain, not a re-encode) while tests use plain strings.
public struct RoomHistory<Line> {
    public let capacity: Int
    public let window: Duration

    private var entries: [(time: LogTime, line: Line)] = []
    /// Index of the oldest entry once the ring is full.
    private var start = 0

    public init(capacity: Int, window: Duration = .seconds(300)) {
        precondition(capacity >= 0)
        self.capacity = capacity
        self.window = window
    }

    public mutating func append(_ line: Line, at time: LogTime) {
        guard capacity > 0 else { return }
        if entries.count < capacity {
            entries.append((time, line))
        } else {
            entries[start] = (time, line)
            start = (start + 1) % capacity
        }
    }

    /// The lines newer than `window`, oldest first.
    public func recent(at now: LogTime) -> [Line] {
        let cutoff = now - window
        var result: [Line] = []
        for offset in 0..<entries.count {
            let entry = entries[(start + offset) % entries.count]
            if entry.time > cutoff { result.append(entry.line) }
        }
        return result
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// Changes every kept line in place (a sender who took a new name).
    public mutating func updateEach(_ change: (inout Line) -> Void) {
        for index in entries.indices { change(&entries[index].line) }
    }
}

extension RoomHistory: Sendable where Line: Sendable {}

/// A cluster's snapshot carries the lines, oldest first, with their times.
extension RoomHistory: Codable where Line: Codable {
    private enum CodingKeys: String, CodingKey { case capacity, window, times, lines }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            capacity: try container.decode(Int.self, forKey: .capacity),
            window: try container.decode(Duration.self, forKey: .window))
        let times = try container.decode([LogTime].self, forKey: .times)
        let lines = try container.decode([Line].self, forKey: .lines)
        for (time, line) in zip(times, lines) { append(line, at: time) }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(capacity, forKey: .capacity)
        try container.encode(window, forKey: .window)
        let ordered = (0..<entries.count).map { entries[(start + $0) % entries.count] }
        try container.encode(ordered.map(\.time), forKey: .times)
        try container.encode(ordered.map(\.line), forKey: .lines)
    }
}
