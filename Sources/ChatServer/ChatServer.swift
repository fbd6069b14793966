import ChatCluster
import ChatCore
import ChatHub
import ChatMail
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle

/// The chat server: listens, accepts, and on graceful shutdown tells every user, flushes
/// and closes within the configured time.
///
/// Run it in a `ServiceGroup` (SIGINT/SIGTERM trigger the graceful shutdown), or call
/// ``run()`` and ``shutdown()`` directly.
public final class ChatServer: Service, Sendable {
    private enum State {
        case idle
        case running([ConnectionAcceptor])
        case stopping
        case stopped
    }

    private let configuration: ServerConfiguration
    private let group: any EventLoopGroup
    private let services: ServerServices
    /// How connections come in (one plain TCP listener for now), all on one hub.
    private let listeners: [Listener]
    private let state = NIOLockedValueBox(State.idle)
    private let shutdownSignal = NIOLockedValueBox<String?>(nil)
    /// The address each listener is bound to, by listener name, once they are.
    private let listening: EventLoopPromise<[String: SocketAddress]>
    /// The TLS listener's certificate and key, when there is one.
    private let tlsStore: TLSContextStore?
    /// This server's metrics (its own registry: servers in one process do not mix).
    private let registry = PrometheusCollectorRegistry()
    /// The metrics endpoint's listening channel, while it listens.
    private let metricsChannel = NIOLockedValueBox<(any Channel)?>(nil)

    /// - Parameters:
    ///   - configuration: validated settings.
    ///   - mailer: delivers OTP mails.
    ///   - eventLoopGroup: the loops connections run on; the hub shards by loop.
    ///   - logger: the server's logger.
    ///   - clock: where it reads the time (tests move it on instead of sleeping).
    /// - Throws: ``ConfigurationError`` when the TLS certificate or key cannot be used.
    public init(
        configuration: ServerConfiguration,
        mailer: any Mailer,
        eventLoopGroup: MultiThreadedEventLoopGroup,
        logger: Logger,
        clock: ServerClock = .system
    ) throws(ConfigurationError) {
        self.configuration = configuration
        self.group = eventLoopGroup
        let eventLoops = Array(eventLoopGroup.makeIterator())
        let metrics = ChatMetrics(
            factory: PrometheusMetricsFactory(registry: registry),
            listeners: Self.listenerNames(configuration),
            eventLoops: eventLoops.count)
        var listeners: [Listener] = []
        if let port = configuration.port {
            listeners.append(
                .plainTCP(
                    host: configuration.bindAddress, port: port, proxyProtocol: configuration.proxyProtocol,
                    logger: logger, metrics: metrics))
        }
        let store = try configuration.tls.map { settings throws(ConfigurationError) in
            try TLSContextStore(settings: settings)
        }
        self.tlsStore = store
        if let store, let port = store.settings.port {
            listeners.append(
                .tls(
                    host: configuration.bindAddress, port: port, store: store,
                    proxyProtocol: configuration.proxyProtocol, logger: logger, metrics: metrics))
        }
        if let web = configuration.web {
            for (port, tls) in [(web.port, nil), (web.tlsPort, store)] {
                guard let port else { continue }
                listeners.append(
                    .web(
                        port: port, settings: web, tls: tls, maxLineBytes: configuration.maxLineBytes,
                        proxyProtocol: configuration.proxyProtocol, clock: clock, logger: logger, metrics: metrics))
            }
        }
        self.listeners = listeners
        let limits = configuration.limits
        let hub = HubState.Configuration(
            historySize: configuration.historySize,
            maxConnectionsPerIP: configuration.maxConnectionsPerIP,
            maxConnections: limits.maxConnections,
            connectionsPerIPPerMinute: limits.connectionsPerIPPerMinute,
            codeRequests: .init(
                interval: limits.otpRequestInterval,
                perAddressPerHour: limits.otpRequestsPerHour,
                perClientPerHour: limits.otpRequestsPerIPPerHour,
                perMinute: limits.otpRequestsPerMinute),
            presenceNoticeMaxMembers: configuration.presenceNoticeMaxMembers,
            renamesPerMinute: limits.nickChangesPerMinute, roomKeepEmptyDays: configuration.roomKeepEmptyDays,
            maxRooms: configuration.roomsMax, roomsPerOwner: configuration.roomsPerOwner,
            resumeTokenDays: configuration.resumeTokenDays)
        let log: any NodeLog
        if let cluster = configuration.cluster {
            log = RedisLog(
                eventLoops: eventLoops, configuration: hub, settings: cluster,
                maxSendQueueBytes: configuration.maxSendQueueBytes, metrics: metrics,
                clusterMetrics: ClusterMetrics(factory: PrometheusMetricsFactory(registry: registry)), logger: logger,
                group: eventLoopGroup)
        } else if let journal = configuration.journal {
            log = JournalLog(
                eventLoops: eventLoops, configuration: hub, settings: journal,
                maxSendQueueBytes: configuration.maxSendQueueBytes, metrics: metrics,
                journalMetrics: JournalMetrics(factory: PrometheusMetricsFactory(registry: registry)), logger: logger,
                clock: clock.wallTime)
        } else {
            log = LocalLog(
                eventLoops: eventLoops, configuration: hub, maxSendQueueBytes: configuration.maxSendQueueBytes,
                metrics: metrics, clock: clock.wallTime)
        }
        self.services = ServerServices(
            configuration: configuration,
            log: log,
            otp: OTPService(
                expiry: configuration.otpExpiration, maximumAttempts: configuration.otpMaxRetries, clock: clock.now),
            mailer: mailer,
            metrics: metrics,
            logger: logger,
            clock: clock
        )
        self.listening = eventLoopGroup.any().makePromise(of: [String: SocketAddress].self)
    }

    /// The address the first listener (plain TCP, unless it is off) listens on, once it does.
    public var localAddress: SocketAddress {
        get async throws {
            let addresses = try await listening.futureResult.get()
            return addresses[listeners[0].name]!
        }
    }

    /// The address a listener (`tcp`, `tls`, or `metrics` for the metrics endpoint) listens
    /// on, once it does.
    public func localAddress(of listener: String) async throws -> SocketAddress? {
        try await listening.futureResult.get()[listener]
    }

    /// Re-reads the TLS certificate and key (on SIGHUP): new connections get the new pair,
    /// established ones keep theirs. Files that cannot be used leave the old pair in place.
    /// - Returns: whether the new pair is in use (`false` also when there is no TLS listener).
    @discardableResult
    public func reloadCertificates() -> Bool {
        guard let tlsStore else { return false }
        do {
            try tlsStore.reload()
            services.logger.notice(
                "TLS certificate reloaded", metadata: ["cert_file": "\(tlsStore.settings.certificateFile)"])
            return true
        } catch {
            services.logger.error(
                "TLS certificate not reloaded; keeping the current one", metadata: ["error": "\(error)"])
            return false
        }
    }

    public func run() async throws {
        let services = self.services
        let logger = services.logger
        var acceptors: [ConnectionAcceptor] = []
        var metricsChannel: (any Channel)?
        do {
            // A cluster node joins and catches up before it takes its first connection.
            try await services.log.start()
            if configuration.cluster == nil && configuration.journal == nil {
                logger.notice(
                    "State is kept in memory only: a restart forgets bans, rooms and their history (DATA_DIR keeps them)"
                )
            }
            for listener in listeners {
                acceptors.append(try ConnectionAcceptor(host: listener.host, port: listener.port, backlog: 1024))
            }
            if let endpoint = configuration.metrics { metricsChannel = try await bindMetrics(endpoint) }
        } catch {
            for acceptor in acceptors { acceptor.close() }
            listening.fail(error)
            throw error
        }
        self.metricsChannel.withLockedValue { $0 = metricsChannel }

        let startNow = state.withLockedValue { state -> Bool in
            guard case .idle = state else { return false }
            state = .running(acceptors)
            return true
        }
        guard startNow else {
            for acceptor in acceptors { acceptor.close() }
            try? await metricsChannel?.close()
            listening.fail(ChannelError.ioOnClosedChannel)
            return
        }
        for (listener, acceptor) in zip(listeners, acceptors) {
            let address = acceptor.localAddress
            logger.info(
                "Listening",
                metadata: [
                    "listener": "\(listener.name)",
                    "address": "\(address.ipAddress ?? "?")",
                    "port": "\(address.port ?? 0)",
                    "mail_transport": "\(services.mailer.name)",
                ]
            )
        }
        var addresses = Dictionary(
            uniqueKeysWithValues: zip(listeners.map(\.name), acceptors.map(\.localAddress)))
        if let address = metricsChannel?.localAddress {
            addresses["metrics"] = address
            logger.info(
                "Serving metrics",
                metadata: [
                    "address": "\(address.ipAddress ?? "?")", "port": "\(address.port ?? 0)",
                    "paths": "/metrics /health",
                ])
        }
        listening.succeed(addresses)

        let sweeper = group.any().scheduleRepeatedTask(initialDelay: .seconds(60), delay: .seconds(60)) { _ in
            services.otp.sweep()
            services.log.submit(.sweep)
        }
        defer { sweeper.cancel() }

        // The log's background work (a cluster node's reading and heartbeats) goes on
        // while the connections drain: their releases travel through it.
        await withTaskGroup(of: Void.self) { background in
            background.addTask { await services.log.run() }
            await serve(acceptors)
            await drainConnections()
            // Nothing is submitted to a stopped log: a sweep would meet a closed journal.
            sweeper.cancel()
            await services.log.stop()
        }
        // The endpoint answers 503 on /health while connections drain; it stops last.
        try? await metricsChannel?.close()
        state.withLockedValue { $0 = .stopped }
        logger.info("Server stopped")
    }

    /// Accepts connections until the listeners close (on shutdown).
    private func serve(_ acceptors: [ConnectionAcceptor]) async {
        let services = self.services
        let logger = services.logger
        let listeners = self.listeners
        let configuration = self.configuration
        // One thread per listener, blocked in `poll` until a connection comes or the
        // listener closes.
        let threads = NIOThreadPool(numberOfThreads: max(1, acceptors.count))
        threads.start()
        await withTaskGroup(of: Void.self) { tasks in
            let period = configuration.memoryReclaimPeriod
            tasks.addTask { await Self.reclaimMemory(every: period, log: services.log, logger: logger) }
            await withGracefulShutdownHandler {
                await withTaskGroup(of: Void.self) { accepting in
                    for (listener, acceptor) in zip(listeners, acceptors) {
                        accepting.addTask {
                            do {
                                try await threads.runIfActive {
                                    acceptor.run(logger: logger) { socket in
                                        // Should NIO fail to adopt the socket (it cannot set it
                                        // non-blocking), it is left open rather than closed
                                        // twice: a number closed twice may be another file's.
                                        self.makeBootstrap(for: listener, socket: socket)
                                            .withConnectedSocket(socket).whenFailure { error in
                                                logger.warning(
                                                    "Cannot set up an accepted connection",
                                                    metadata: ["listener": "\(listener.name)", "error": "\(error)"])
                                            }
                                    }
                                }
                            } catch {
                                logger.error(
                                    "Accepting connections failed",
                                    metadata: ["listener": "\(listener.name)", "error": "\(error)"])
                                acceptor.close()
                            }
                        }
                    }
                }
            } onGracefulShutdown: {
                self.shutdown()
            }
            tasks.cancelAll()
        }
        try? await threads.shutdownGracefully()
    }

    /// The HTTP endpoint for `/metrics` and `/health`.
    private func bindMetrics(_ endpoint: MetricsSettings) async throws -> any Channel {
        let routes = MetricsHTTPHandler.Routes(
            metrics: { [services, registry] in
                services.metrics.refresh(from: services.log)
                return registry.emitToBuffer()
            },
            isAccepting: { [state] in
                state.withLockedValue { state in
                    if case .running = state { return true }
                    return false
                }
            })
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(IdleStateHandler(readTimeout: .seconds(10)))
                    try pipeline.configureHTTPServerPipeline(withErrorHandling: true)
                    try pipeline.addHandler(MetricsHTTPHandler(routes: routes))
                }
            }
            .bind(host: endpoint.host, port: endpoint.port)
            .get()
    }

    /// Names the signal a coming shutdown is for (`SIGTERM`), for the line it is logged with.
    public func shutdownRequested(by signal: String) {
        shutdownSignal.withLockedValue { $0 = $0 ?? signal }
    }

    /// Stops accepting; ``run()`` then tells everyone, closes their connections and returns.
    public func shutdown() {
        let acceptors = state.withLockedValue { state -> [ConnectionAcceptor] in
            switch state {
            case .idle:
                state = .stopped
                return []
            case .running(let acceptors):
                state = .stopping
                return acceptors
            case .stopping, .stopped:
                return []
            }
        }
        guard !acceptors.isEmpty else { return }
        var metadata: Logger.Metadata = ["connections": "\(services.openConnections.withLockedValue { $0 })"]
        if let signal = shutdownSignal.withLockedValue({ $0 }) { metadata["signal"] = "\(signal)" }
        services.logger.notice("Shutting down: new connections are refused, the connected are told", metadata: metadata)
        for acceptor in acceptors { acceptor.close() }
    }

    /// Runs ``MemoryReclaimer`` until cancelled, off the event loops.
    private static func reclaimMemory(every period: Duration, log: any NodeLog, logger: Logger) async {
        var reclaimer = MemoryReclaimer(period: period)
        let clock = ContinuousClock()
        while (try? await Task.sleep(for: period)) != nil {
            guard reclaimer.shouldTrim(churn: log.read(\.connectionChurn), now: clock.now) else { continue }
            let started = clock.now
            let returned = MemoryReclaimer.trim()
            logger.debug(
                "Returned free memory to the system",
                metadata: [
                    "pages_returned": "\(returned)", "duration": "\(clock.now - started)",
                    "connections": "\(log.read(\.connections.count))",
                ])
        }
    }

    /// Sends the shutdown notice, waits for every connection to close, and closes the
    /// stragglers when the shutdown timeout is up.
    private func drainConnections() async {
        let log = services.log
        let logger = services.logger
        let loop = group.any()
        let allClosed = log.beginShutdown(on: loop)
        let done = loop.makePromise(of: Void.self)
        // Whichever comes first completes `done`; a promise must be completed only once.
        let completed = NIOLockedValueBox(false)
        let complete: @Sendable () -> Bool = {
            let first = completed.withLockedValue { wasCompleted in
                defer { wasCompleted = true }
                return !wasCompleted
            }
            if first { done.succeed() }
            return first
        }
        allClosed.whenComplete { _ in _ = complete() }
        let open = services.openConnections
        let timeout = loop.scheduleTask(in: TimeAmount(configuration.shutdownTimeout)) {
            let remaining = open.withLockedValue { $0 }
            if remaining > 0 {
                logger.warning(
                    "Shutdown timeout reached; closing remaining connections", metadata: ["connections": "\(remaining)"]
                )
                log.closeAll()
            } else {
                // Every connection is gone, but the hub log has not confirmed their release
                // (a cluster node that cannot reach Redis cannot write it).
                logger.warning(
                    "Shutdown timeout reached with every connection closed; waiting 5 s more for the hub log to confirm their release"
                )
            }
        }
        // A cluster node learns that its connections are released by reading its log back;
        // without Redis it never would, so the wait ends a little after the timeout anyway.
        let giveUp = loop.scheduleTask(in: TimeAmount(configuration.shutdownTimeout) + .seconds(5)) {
            if complete() {
                logger.warning("Connections closed without their release being confirmed by the hub log")
                log.replica.stopWaitingForAllClosed()
            }
        }
        try? await done.futureResult.get()
        timeout.cancel()
        giveUp.cancel()
    }

    /// How a socket a listener accepted becomes a channel: on the next event loop, counted,
    /// with the listener's handlers. (A bootstrap per socket: the session's handlers are
    /// told the socket.)
    private func makeBootstrap(for listener: Listener, socket: CInt) -> ClientBootstrap {
        let services = self.services
        return ClientBootstrap(group: group)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            // Idle connections must be cheap: NIO keeps each connection's receive buffer
            // for its next read, at the size it was first allocated. A login line (an
            // address of up to 254 bytes) fits in 256; busy clients' buffers grow.
            .channelOption(
                .recvAllocator,
                value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 256, maximum: 16384)
            )
            .channelOption(.maxMessagesPerRead, value: 4)
            // Over the high watermark a client's reads pause (it is not reading what it is
            // sent); past MAX_SENDQ_BYTES it is disconnected.
            .channelOption(
                .writeBufferWaterMark,
                value: .init(low: Self.highWatermark(configuration) / 2, high: Self.highWatermark(configuration))
            )
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let name = listener.name
                    services.metrics.connectionOpened(on: name)
                    services.openConnections.withLockedValue { $0 += 1 }
                    // Kept until the connection closes: it holds the listener's name, not
                    // the whole listener.
                    channel.closeFuture.whenComplete { _ in
                        services.metrics.connectionClosed(on: name)
                        services.openConnections.withLockedValue { $0 -= 1 }
                    }
                    try listener.addHandlers(channel, SessionHandlers(services: services, socket: socket))
                }
            }
    }

    /// Every listener's name, as metrics label them.
    private static func listenerNames(_ configuration: ServerConfiguration) -> [String] {
        var names: [String] = []
        if configuration.port != nil { names.append("tcp") }
        if configuration.tls?.port != nil { names.append("tls") }
        if configuration.web?.port != nil { names.append("web") }
        if configuration.web?.tlsPort != nil { names.append("web-tls") }
        return names
    }

    private static func highWatermark(_ configuration: ServerConfiguration) -> Int {
        min(64 * 1024, configuration.maxSendQueueBytes / 2)
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
        var occupancy = services.log.read { state in
            Occupancy(
                connections: state.connections.count,
                ipSlots: state.connectionsPerIP.count,
                onlineUsers: state.sessions.count,
                rooms: state.rooms.count,
                pendingCodes: 0
            )
        }
        occupancy.pendingCodes = services.otp.pendingCount
        return occupancy
    }
}
