import ChatCore
import ChatHub
import NIOCore

/// The fan-out path without sockets, for the micro-benchmarks in `Benchmarks/`: channels
/// (typically `EmbeddedChannel`s on one `EmbeddedEventLoop`) are put online in `#general`
/// through the real ``LocalLog`` and ``LoopShard``, and ``say(_:)`` submits a chat line
/// exactly as a connection's session does. Running the loop then delivers it.
///
/// Not for production use: it is SPI so that the benchmark package can reach the hub,
/// which is internal.
@_spi(Benchmarks)
public final class FanOutProbe {
    private let log: LocalLog
    private let sender: SessionID

    /// - Parameters:
    ///   - eventLoop: the loop every channel is on; the caller runs it.
    ///   - channels: one per member; the first is the sender.
    public init(eventLoop: any EventLoop, channels: [any Channel]) throws {
        precondition(!channels.isEmpty)
        // The default HISTORY_SIZE: each line is also kept in the room's history.
        log = LocalLog(
            eventLoops: [eventLoop],
            configuration: .init(
                historySize: ServerConfiguration().historySize, maxConnectionsPerIP: 1))
        let shard = log.shards[0]
        var ids: [SessionID] = []
        for (index, channel) in channels.enumerated() {
            try channel.pipeline.syncOperations.addHandler(ProbeHandler())
            let context = try channel.pipeline.syncOperations.context(handlerType: ProbeHandler.self)
            let address = SessionAddress(id: log.makeSessionID(), shard: 0)
            shard.attach(LocalSession(id: address.id, context: context))
            let ip = "10.\(index / 65_536).\(index / 256 % 256).\(index % 256)"
            log.submit(.admit(address, ip: ip, display: ip))
            log.submit(
                .login(
                    address, username: "member\(index)", emailKey: "member\(index)@bench.test", ip: ip,
                    isOperator: false))
            ids.append(address.id)
        }
        sender = ids[0]
    }

    /// Queues one chat line from the first member to the room: the command a connection's
    /// session submits; the hub formats and encodes it.
    public func say(_ text: String) {
        log.submit(.say(sender, text: text, isAction: false))
    }
}

/// Gives each probe channel a context to write through, as the connection handler does.
private final class ProbeHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
}
