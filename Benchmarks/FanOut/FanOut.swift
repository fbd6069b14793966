import Benchmark
@_spi(Benchmarks) import ChatServer
import NIOCore
import NIOEmbedded

/// One chat line to a room of 1 000 members, through the real hub and loop shard, over
/// `EmbeddedChannel`s: the server's work per line minus the system calls. One iteration
/// is one line, that is 1 000 deliveries; the `.kilo` scaling factor makes the scaled
/// figures (marked `*`) per delivered line.
let benchmarks: @Sendable () -> Void = {
    let room = EmbeddedRoom(members: 1_000)

    Benchmark(
        // No spaces in the name: thresholds files are found by it.
        "OneLineTo1000Members",
        configuration: .init(
            metrics: [.wallClock, .cpuTotal, .mallocCountTotal],
            warmupIterations: 10,
            scalingFactor: .kilo,
            maxDuration: .seconds(5),
            maxIterations: 2_000,
            // The committed threshold (Thresholds/) is 27 allocations per line, that is
            // 0.027 per delivered line: formatting and encoding the line, keeping it in
            // the room's history, queueing it on the shard and scheduling the drain.
            // `thresholds check` fails past 27 + 3; anything allocated per recipient
            // would add 1 000.
            thresholds: [.mallocCountTotal: .init(absolute: [.p90: 3])]
        )
    ) { benchmark in
        try room.prepare()
        benchmark.startMeasurement()
        try room.deliverOneLine()
        benchmark.stopMeasurement()
    }
}

/// The members' channels and the probe, built on first use and kept for every iteration.
final class EmbeddedRoom {
    let members: Int
    private var built: (loop: EmbeddedEventLoop, channels: [EmbeddedChannel], probe: FanOutProbe)?

    init(members: Int) {
        self.members = members
    }

    func prepare() throws {
        guard built == nil else { return }
        let loop = EmbeddedEventLoop()
        let channels = (0..<members).map { _ in EmbeddedChannel(loop: loop) }
        for channel in channels {
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        }
        let probe = try FanOutProbe(eventLoop: loop, channels: channels)
        // Deliver the welcome lines and the (deferred) join notices, then start clean.
        loop.run()
        loop.advanceTime(by: .seconds(1))
        try Self.drain(channels)
        built = (loop, channels, probe)
    }

    /// One line from the first member, delivered to every member and taken off the wire.
    func deliverOneLine() throws {
        guard let (loop, channels, probe) = built else { return }
        probe.say("hello, everyone in the room: a 64-byte line of chat text .....")
        loop.run()
        try Self.drain(channels)
    }

    /// Takes what was written to each channel, as the kernel would.
    private static func drain(_ channels: [EmbeddedChannel]) throws {
        for channel in channels {
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { blackHole(buffer) }
        }
    }
}
