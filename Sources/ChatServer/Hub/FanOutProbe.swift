import ChatCore
import NIOCore

/// The fan-out path without sockets, for the micro-benchmarks in `Benchmarks/`: channels
/// (typically `EmbeddedChannel`s on one `EmbeddedEventLoop`) are put online in `#general`
/// through the real ``ChatHub`` and ``LoopShard``, and ``say(_:)`` queues a chat line
/// exactly as a connection's handler does. Running the loop then delivers it.
///
/// Not for production use: it is SPI so that the benchmark package can reach the hub,
/// which is internal.
@_spi(Benchmarks)
public final class FanOutProbe {
    private let hub: ChatHub
    private let sender: SessionID
    private let senderName = "member0"

    /// - Parameters:
    ///   - eventLoop: the loop every channel is on; the caller runs it.
    ///   - channels: one per member; the first is the sender.
    public init(eventLoop: any EventLoop, channels: [any Channel]) throws {
        precondition(!channels.isEmpty)
        // The default HISTORY_SIZE: each line is also kept in the room's history.
        hub = ChatHub(
            eventLoops: [eventLoop],
            limits: .init(maxConnectionsPerIP: 1, historySize: ServerConfiguration().historySize))
        let shard = hub.shards[0]
        var ids: [SessionID] = []
        for (index, channel) in channels.enumerated() {
            try channel.pipeline.syncOperations.addHandler(ProbeHandler())
            let context = try channel.pipeline.syncOperations.context(handlerType: ProbeHandler.self)
            let id = hub.makeSessionID()
            shard.attach(LocalSession(id: id, context: context))
            let identity = ChatHub.Identity(
                username: "member\(index)", email: EmailAddress("member\(index)@bench.test")!,
                ip: "10.\(index / 65_536).\(index / 256 % 256).\(index % 256)", isOperator: false)
            _ = hub.login(id, as: identity, shard: 0)
            ids.append(id)
        }
        sender = ids[0]
    }

    /// Formats, encodes and queues one chat line from the first member to the room: the
    /// work a connection's handler and the hub do per line.
    public func say(_ text: String) {
        hub.say(sender, line: ChatHub.encode(ServerLine.chat(from: senderName, text)))
    }
}

/// Gives each probe channel a context to write through, as the connection handler does.
private final class ProbeHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
}
