import Histogram
import NIOCore

/// What the clients on one event loop measured. Touched only on that loop.
final class LoopStats {
    var recording = false
    var latency = Histogram<UInt64>(highestTrackableValue: 120_000_000_000)
    var deliveries = 0
    var lost = 0
    var reordered = 0
    var duplicates = 0
    /// When each client was first seen leaving, by name (monotonic nanoseconds).
    var departures: [String: UInt64] = [:]

    func departed(_ name: String, at time: UInt64) {
        if departures[name] == nil { departures[name] = time }
    }

    func delivered(latencyNanos: UInt64) {
        guard recording else { return }
        deliveries += 1
        _ = latency.record(min(latencyNanos, 120_000_000_000))
    }

    func lost(_ count: Int) {
        if recording { lost += count }
    }

    /// A line counted as lost arrived after all, after later ones.
    func arrivedLate() {
        guard recording else { return }
        reordered += 1
        if lost > 0 { lost -= 1 }
    }

    /// A line that had already arrived arrived again.
    func duplicated() {
        if recording { duplicates += 1 }
    }

    func reset(recording: Bool) {
        self.recording = recording
        latency.reset()
        deliveries = 0
        lost = 0
        reordered = 0
        duplicates = 0
    }

    var snapshot: Snapshot {
        Snapshot(
            latency: latency, deliveries: deliveries, lost: lost, reordered: reordered, duplicates: duplicates,
            departures: departures)
    }

    struct Snapshot: Sendable {
        var latency: Histogram<UInt64>
        var deliveries: Int
        var lost: Int
        var reordered: Int
        var duplicates: Int
        var departures: [String: UInt64] = [:]

        static let empty = Snapshot(
            latency: Histogram<UInt64>(highestTrackableValue: 120_000_000_000), deliveries: 0, lost: 0, reordered: 0,
            duplicates: 0)

        mutating func add(_ other: Snapshot) {
            latency.add(other.latency)
            deliveries += other.deliveries
            lost += other.lost
            reordered += other.reordered
            duplicates += other.duplicates
            departures.merge(other.departures) { min($0, $1) }
        }
    }
}

@available(*, unavailable)
extension LoopStats: Sendable {}

/// One `LoopStats` per event loop, reachable from anywhere as loop-bound values.
struct StatsRegistry: Sendable {
    let entries: [(loop: any EventLoop, stats: NIOLoopBound<LoopStats>)]

    static func make(for group: any EventLoopGroup) async throws -> StatsRegistry {
        var entries: [(any EventLoop, NIOLoopBound<LoopStats>)] = []
        for loop in group.makeIterator() {
            let bound = try await loop.submit { NIOLoopBound(LoopStats(), eventLoop: loop) }.get()
            entries.append((loop, bound))
        }
        return StatsRegistry(entries: entries)
    }

    /// Call on `loop`.
    func stats(on loop: any EventLoop) -> LoopStats {
        entries.first { $0.loop === loop }!.stats.value
    }

    /// Resets every loop's counters; recording starts or stops.
    func reset(recording: Bool) async throws {
        for entry in entries {
            try await entry.loop.submit { entry.stats.value.reset(recording: recording) }.get()
        }
    }

    func collect() async throws -> LoopStats.Snapshot {
        var total = LoopStats.Snapshot.empty
        for entry in entries {
            total.add(try await entry.loop.submit { entry.stats.value.snapshot }.get())
        }
        return total
    }
}
