import ChatCore
import ChatMail
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The chat server: listens, accepts, and on graceful shutdown tells every user, flushes
/// and closes within the configured time.
///
/// Run it in a `ServiceGroup` (SIGINT/SIGTERM trigger the graceful shutdown), or call
/// ``run()`` and ``shutdown()`` directly.
public final class ChatServer: Service, Sendable {
    private enum State {
        case idle
        case running(any Channel)
        case stopping
        case stopped
    }

    private let configuration: ServerConfiguration
    private let group: any EventLoopGroup
    private let services: ServerServices
    private let state = NIOLockedValueBox(State.idle)
    private let listening: EventLoopPromise<SocketAddress>

    /// - Parameters:
    ///   - configuration: validated settings.
    ///   - mailer: delivers OTP mails.
    ///   - eventLoopGroup: the loops connections run on; the hub shards by loop.
    ///   - logger: the server's logger.
    public init(
        configuration: ServerConfiguration,
        mailer: any Mailer,
        eventLoopGroup: MultiThreadedEventLoopGroup,
        logger: Logger
    ) {
        self.configuration = configuration
        self.group = eventLoopGroup
        let loops = Array(eventLoopGroup.makeIterator())
        let hub = ChatHub(
            eventLoops: loops,
            limits: .init(
                maxConnectionsPerIP: configuration.maxConnectionsPerIP,
                historySize: configuration.historySize,
                maxConnections: configuration.limits.maxConnections,
                connectionsPerIPPerMinute: configuration.limits.connectionsPerIPPerMinute,
                maxSendQueueBytes: configuration.maxSendQueueBytes
            )
        )
        self.services = ServerServices(
            configuration: configuration,
            hub: hub,
            otp: OTPService(
                expiry: configuration.otpExpiration,
                maximumAttempts: configuration.otpMaxRetries,
                throttles: .init(
                    interval: configuration.limits.otpRequestInterval,
                    perAddressPerHour: configuration.limits.otpRequestsPerHour,
                    perClientPerHour: configuration.limits.otpRequestsPerIPPerHour,
                    perMinute: configuration.limits.otpRequestsPerMinute
                )
            ),
            mailer: mailer,
            logger: logger
        )
        self.listening = eventLoopGroup.any().makePromise(of: SocketAddress.self)
    }

    /// The address the server listens on, once it does.
    public var localAddress: SocketAddress {
        get async throws { try await listening.futureResult.get() }
    }

    public func run() async throws {
        let services = self.services
        let logger = services.logger
        let serverChannel: NIOAsyncChannel<any Channel, Never>
        do {
            serverChannel = try await makeBootstrap().bind(
                host: configuration.bindAddress,
                port: configuration.port
            ) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.configurePipeline(channel, services: services)
                    return channel
                }
            }
        } catch {
            listening.fail(error)
            throw error
        }

        let startNow = state.withLockedValue { state -> Bool in
            guard case .idle = state else { return false }
            state = .running(serverChannel.channel)
            return true
        }
        guard startNow else {
            try await serverChannel.channel.close()
            listening.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let address = serverChannel.channel.localAddress!
        listening.succeed(address)
        logger.info(
            "Listening",
            metadata: [
                "address": "\(address.ipAddress ?? "?")",
                "port": "\(address.port ?? 0)",
                "mail_transport": "\(services.mailer.name)",
            ]
        )

        let sweeper = group.any().scheduleRepeatedTask(initialDelay: .seconds(60), delay: .seconds(60)) { _ in
            services.otp.sweep()
            services.hub.sweep()
        }
        defer { sweeper.cancel() }

        await withTaskGroup(of: Void.self) { tasks in
            let period = configuration.memoryReclaimPeriod
            tasks.addTask { await Self.reclaimMemory(every: period, hub: services.hub, logger: logger) }
            await withGracefulShutdownHandler {
                do {
                    // Connections are set up by the pipeline; this loop only keeps
                    // accepting until the listening channel closes.
                    try await serverChannel.executeThenClose { inbound in
                        for try await _ in inbound {}
                    }
                } catch {
                    logger.error("Accepting connections failed", metadata: ["error": "\(error)"])
                }
            } onGracefulShutdown: {
                self.shutdown()
            }
            tasks.cancelAll()
        }
        await drainConnections()
        state.withLockedValue { $0 = .stopped }
        logger.info("Server stopped")
    }

    /// Stops accepting; ``run()`` then tells everyone, closes their connections and returns.
    public func shutdown() {
        let channel = state.withLockedValue { state -> (any Channel)? in
            switch state {
            case .idle:
                state = .stopped
                return nil
            case .running(let channel):
                state = .stopping
                return channel
            case .stopping, .stopped:
                return nil
            }
        }
        channel?.close(promise: nil)
    }

    /// Runs ``MemoryReclaimer`` until cancelled, off the event loops.
    private static func reclaimMemory(every period: Duration, hub: ChatHub, logger: Logger) async {
        var reclaimer = MemoryReclaimer(period: period)
        let clock = ContinuousClock()
        while (try? await Task.sleep(for: period)) != nil {
            guard reclaimer.shouldTrim(churn: hub.connectionChurn, now: clock.now) else { continue }
            let started = clock.now
            let returned = MemoryReclaimer.trim()
            logger.debug(
                "Returned free memory to the system",
                metadata: [
                    "pages_returned": "\(returned)", "duration": "\(clock.now - started)",
                    "connections": "\(hub.snapshot().connections)",
                ])
        }
    }

    /// Sends the shutdown notice, waits for every connection to close, and closes the
    /// stragglers when the shutdown timeout is up.
    private func drainConnections() async {
        let hub = services.hub
        let logger = services.logger
        let loop = group.any()
        let allClosed = hub.beginShutdown(on: loop)
        let timeout = loop.scheduleTask(in: TimeAmount(configuration.shutdownTimeout)) {
            logger.warning("Shutdown timeout reached; closing remaining connections")
            hub.closeAll()
        }
        try? await allClosed.get()
        timeout.cancel()
    }

    private func makeBootstrap() -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // Idle connections must be cheap: start small, grow only for busy clients.
            .childChannelOption(
                .recvAllocator,
                value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 16384)
            )
            .childChannelOption(.maxMessagesPerRead, value: 4)
            // Over the high watermark a client's reads pause (it is not reading what it is
            // sent); past MAX_SENDQ_BYTES it is disconnected.
            .childChannelOption(
                .writeBufferWaterMark,
                value: .init(low: Self.highWatermark(configuration) / 2, high: Self.highWatermark(configuration))
            )
    }

    private static func highWatermark(_ configuration: ServerConfiguration) -> Int {
        min(64 * 1024, configuration.maxSendQueueBytes / 2)
    }

    private static func configurePipeline(_ channel: any Channel, services: ServerServices) throws {
        let decoder = LineFrameDecoder(maximumLineBytes: services.configuration.maxLineBytes)
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder))
        try channel.pipeline.syncOperations.addHandler(ConnectionHandler(services: services))
    }

    // MARK: Introspection for tests

    /// Counts of what the server holds in memory right now.
    public struct Occupancy: Equatable, Sendable {
        public var connections: Int
        public var ipSlots: Int
        public var onlineUsers: Int
        public var rooms: Int
        public var pendingCodes: Int
    }

    public var occupancy: Occupancy {
        let snapshot = services.hub.snapshot()
        return Occupancy(
            connections: snapshot.connections,
            ipSlots: snapshot.ipSlots,
            onlineUsers: snapshot.onlineUsers,
            rooms: snapshot.rooms,
            pendingCodes: services.otp.pendingCount
        )
    }
}
