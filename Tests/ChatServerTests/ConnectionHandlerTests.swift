import ChatCore
import ChatMail
import Logging
import NIOCore
import NIOEmbedded
import Prometheus
import Testing

@testable import ChatHub
@testable import ChatServer

/// The connection handler driven on an `EmbeddedChannel`: it carries out what its session
/// decides, and closes the connection only when the session says so.
@Suite struct ConnectionHandlerTests {
    /// A handler for a client at 10.0.0.1, on a hub of its own on the channel's loop,
    /// admitted and greeted.
    private func greetedHandler(
        configure: (inout ServerConfiguration) -> Void = { _ in }, made: (ConnectionHandler) -> Void = { _ in }
    ) throws -> (EmbeddedChannel, PrometheusCollectorRegistry) {
        let (channel, registry) = try connectedHandler(configure: configure, made: made)
        channel.embeddedEventLoop.run()
        #expect(try lines(from: channel) == ServerLine.welcome)
        return (channel, registry)
    }

    /// The same, with the hub's admission not yet delivered (it comes when the loop runs).
    private func connectedHandler(
        configure: (inout ServerConfiguration) -> Void = { _ in }, made: (ConnectionHandler) -> Void = { _ in }
    ) throws -> (EmbeddedChannel, PrometheusCollectorRegistry) {
        let channel = EmbeddedChannel()
        var configuration = ServerConfiguration()
        configure(&configuration)
        let registry = PrometheusCollectorRegistry()
        let metrics = ChatMetrics(
            factory: PrometheusMetricsFactory(registry: registry), listeners: ["tcp"], eventLoops: 1)
        let log = LocalLog(
            eventLoops: [channel.embeddedEventLoop],
            configuration: .init(historySize: 10, maxConnectionsPerIP: 1), metrics: metrics)
        let logger = Logger(label: "connection-handler-test") { _ in SwiftLogNoOpLogHandler() }
        let services = ServerServices(
            configuration: configuration, log: log, otp: OTPService(expiry: .seconds(300), maximumAttempts: 3),
            mailer: LogMailer(logger: logger), metrics: metrics, logger: logger)
        let handler = ConnectionHandler(services: services)
        made(handler)
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8888)).wait()
        channel.pipeline.fireUserInboundEventTriggered(
            ClientAddressResolved(address: ClientAddress(display: "10.0.0.1", limitKey: "10.0.0.1")))
        return (channel, registry)
    }

    private func lines(from channel: EmbeddedChannel) throws -> [String] {
        var lines: [String] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            lines += String(buffer: buffer).split(separator: "\n").map(String.init)
        }
        return lines
    }

    @Test func aLineTooLongIsAnsweredAndTheConnectionStays() throws {
        let (channel, _) = try greetedHandler()
        try channel.writeInbound(InboundLine.tooLong)
        channel.embeddedEventLoop.run()
        #expect(try lines(from: channel) == [UserError.lineTooLong(maximum: 4096).line])
        #expect(channel.isActive)
        try channel.writeInbound(InboundLine.line("not-an-address"))
        channel.embeddedEventLoop.run()
        #expect(
            try lines(from: channel) == [
                ServerLine.verifyingEmail, UserError.invalidEmail.line, ServerLine.emailPrompt,
            ])
        _ = try? channel.finish()
    }

    @Test func aFloodPastTheQueueLimitIsToldAndClosedThroughTheSession() throws {
        let (channel, registry) = try connectedHandler { $0.limits.maxQueuedLines = 3 }
        // The session waits for the hub's admission (it comes when the loop runs): lines
        // queue up, and the fourth is one too many. (No address is sent: nothing is mailed
        // off the loop.)
        for index in 0..<4 { channel.pipeline.fireChannelRead(InboundLine.line("line \(index)")) }
        #expect(try lines(from: channel) == [UserError.flooding.line])
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
        var exposition: [UInt8] = []
        registry.emit(into: &exposition)
        #expect(String(decoding: exposition, as: UTF8.self).contains(#"chat_disconnects_total{reason="flood"} 1"#))
    }

    @Test func aConnectionErrorClosesThroughTheSession() throws {
        let (channel, _) = try greetedHandler()
        channel.pipeline.fireErrorCaught(ChannelError.ioOnClosedChannel)
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
        #expect(try lines(from: channel).isEmpty, "closed without a word")
    }

    @Test func quitSaysGoodbyeAndCloses() throws {
        let (channel, _) = try greetedHandler()
        try channel.writeInbound(InboundLine.line("/quit"))
        channel.embeddedEventLoop.run()
        #expect(try lines(from: channel) == ["*** Goodbye! ***"])
        #expect(!channel.isActive)
    }

    /// A connection's handler and its pipeline context hold each other: once the connection
    /// is closed, nothing of it may stay behind (a handler and context kept per connection
    /// ever made, about 570 bytes each, grew a long-running server without bound).
    @Test func aClosedConnectionLeavesNoHandlerBehind() throws {
        weak var greeted: ConnectionHandler?
        weak var quitting: ConnectionHandler?
        do {
            let (first, _) = try greetedHandler(made: { greeted = $0 })
            let (second, _) = try greetedHandler(made: { quitting = $0 })
            #expect(greeted != nil && quitting != nil, "alive while their connections are")
            try first.close().wait()
            first.embeddedEventLoop.run()
            try second.writeInbound(InboundLine.line("/quit"))
            second.embeddedEventLoop.run()
            #expect(!second.isActive)
        }
        #expect(greeted == nil, "a handler closed by its peer is released")
        #expect(quitting == nil, "a handler that closed its connection is released")
    }
}
