import ArgumentParser
import Foundation
import Histogram
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

@main
struct ChatBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-bench",
        abstract: "Drives a running chat server over the real protocol and measures it.",
        discussion: """
            MODES
              login   log N clients in (codes from the file transport's folder); login rate and latency
              fanout  N clients in R rooms, S senders at a fixed total rate (--rate) or closed loop
                      (--rate 0: each sender keeps --window own lines in flight); deliveries/s,
                      latency percentiles, losses, reordering, server CPU per delivery and RSS
              slow    as fanout at a fixed rate, then --slow clients stop reading; the others' rate
                      and latency before and after, and when the server disconnected the slow ones
              idle    hold N logged-in clients; server RSS per connection
              crowd   log N clients in, print the login figures, then hold them and obey commands
                      read from standard input, one per line (for Benchmarks/scale.py, which runs
                      several of these against several nodes):
                        watch TEXT       each client notes when it first receives a line holding TEXT
                        send I TEXT      client I (0-based, of this process) sends the line TEXT;
                                         answers when, on the clock `report` uses
                        report           one JSON line: how many saw TEXT and when (CLOCK_MONOTONIC
                                         ns), clients still connected, room departures heard
                        quit             close every connection and exit

            The server must use MAIL_TRANSPORT=file with MAIL_DIR = --mail-dir, and limits that let a
            benchmark through (see BENCHMARKS.md). Each client connects from its own loopback
            address, 127.a.b.c from client --first-index on. Output: a human summary, then one JSON line.
            """
    )

    enum Mode: String, ExpressibleByArgument, CaseIterable { case login, fanout, slow, idle, crowd }

    @Argument(help: "login, fanout, slow, idle or crowd") var mode: Mode
    @Option(help: "Server address.") var host = "127.0.0.1"
    @Option(help: "Server port; repeat it for several nodes of a cluster: client i connects to the (i mod n)-th.")
    var port: [Int] = [8888]
    @Option(help: "The server's MAIL_DIR (file transport).") var mailDir = "./mail"
    @Option(
        help: "Server process id, for CPU and memory; repeat per node (and Redis): summed, each shown."
    )
    var serverPid: [Int32] = []
    @Option(help: "Clients.") var clients = 100
    @Option(
        help: """
            The first client's number: client i is user bench<i> at 127.a.b.c, so processes given \
            disjoint ranges can share one server or cluster.
            """)
    var firstIndex = 0
    @Option(help: "Names the run in the clients' e-mail addresses, b<i>.<run id>@bench.test (default: random).")
    var runID: String?
    @Option(help: "Rooms the clients are spread over (1: everyone in #general).") var rooms = 1
    @Option(help: "Clients that send.") var senders = 5
    @Option(help: "Lines per second from all senders together; 0 for a closed loop.") var rate = 100.0
    @Option(help: "Closed loop: lines each sender keeps in flight.") var window = 10
    @Option(help: "Bytes per delivered line.") var lineBytes = 64
    @Option(help: "Seconds to measure.") var duration = 10.0
    @Option(help: "Seconds of traffic before measuring.") var warmup = 2.0
    @Option(help: "slow: clients that stop reading.") var slow = 1
    @Option(help: "Logins in progress at once.") var loginConcurrency = 64
    @Option(help: "Event loop threads of the benchmark itself.") var threads = 1
    @Flag(help: "Connect with TLS (to the server's TLS_PORT, given as --port).") var tls = false
    @Flag(help: "Speak WebSocket, as a browser does (to the server's WEB_PORT, given as --port).")
    var websocket = false
    @Option(help: "With --tls: PEM file of the CA to verify the server with (default: no verification).")
    var caFile: String?

    func run() async throws {
        _ = BenchClient.runStarted
        raiseOpenFileLimit()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let mail = MailWatcher(directory: mailDir)
        let scanner = Task { await mail.run() }
        do {
            let report = try await Bench(options: self, group: group, mail: mail).run()
            // A crowd said its figures before it took commands.
            if mode != .crowd {
                print(report.summary)
                print(report.json)
            }
        } catch {
            mail.stop()
            scanner.cancel()
            try? await group.shutdownGracefully()
            throw error
        }
        mail.stop()
        await scanner.value
        try await group.shutdownGracefully()
    }
}

/// One benchmark run.
struct Bench {
    let options: ChatBench
    let group: MultiThreadedEventLoopGroup
    let mail: MailWatcher
    let runID: String
    /// With `--tls`: one client context for every connection, as one client program has.
    let tlsContext: NIOSSLContext?

    init(options: ChatBench, group: MultiThreadedEventLoopGroup, mail: MailWatcher) throws {
        self.options = options
        self.group = group
        self.mail = mail
        self.runID = options.runID ?? String(UInt32.random(in: 0...UInt32.max), radix: 36)
        guard options.tls else {
            tlsContext = nil
            return
        }
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let caFile = options.caFile {
            configuration.trustRoots = .file(caFile)
        } else {
            configuration.certificateVerification = .none
        }
        tlsContext = try NIOSSLContext(configuration: configuration)
    }

    func run() async throws -> Report {
        let registry = try await StatsRegistry.make(for: group)
        var report = Report(mode: options.mode.rawValue, clients: options.clients)
        let baseline = ProcessStats.read(pids: options.serverPid)
        let benchBaseline = ProcessStats.current()
        let start = ContinuousClock.now
        let (clients, loginLatency) = try await login(registry: registry)
        report.loginSeconds = (ContinuousClock.now - start).seconds
        report.loginLatency = loginLatency
        report.loginBenchCPUSeconds = ProcessStats.current().cpuSeconds - benchBaseline.cpuSeconds
        if let baseline, let now = ProcessStats.read(pids: options.serverPid) {
            report.loginServerCPUSeconds = now.total.cpuSeconds - baseline.total.cpuSeconds
        }

        switch options.mode {
        case .login:
            break
        case .idle:
            try await Task.sleep(for: .seconds(options.duration))
            if let baseline, let now = ProcessStats.read(pids: options.serverPid) {
                report.serverRSSBytes = now.total.residentBytes
                report.rssPerConnection =
                    Double(now.total.residentBytes - baseline.total.residentBytes) / Double(options.clients)
            }
        case .fanout:
            (report.phases, _) = try await fanout(clients, registry: registry, slowAfter: nil)
        case .slow:
            (report.phases, report.slowDisconnectedAfter) = try await fanout(
                clients, registry: registry, slowAfter: options.slow)
        case .crowd:
            try await hold(clients, loginReport: report)
        }
        for client in clients { client.channel.close(promise: nil) }
        return report
    }

    /// A connected client: its channel and its loop-bound handler.
    struct Connected: Sendable {
        let channel: any Channel
        let handler: NIOLoopBound<BenchClient>
    }

    private func login(registry: StatsRegistry) async throws -> ([Connected], Histogram<UInt64>) {
        var latency = Histogram<UInt64>(highestTrackableValue: 600_000_000_000)
        var connected: [Connected] = []
        connected.reserveCapacity(options.clients)
        try await withThrowingTaskGroup(of: (Int, Connected, UInt64).self) { tasks in
            var next = 0
            let first = options.firstIndex
            func startOne() {
                let index = next
                next += 1
                tasks.addTask {
                    let (_, client, nanos) = try await connectAndLogin(first + index, registry: registry)
                    return (index, client, nanos)
                }
            }
            for _ in 0..<min(options.loginConcurrency, options.clients) { startOne() }
            var byIndex: [Int: Connected] = [:]
            for try await (index, client, nanos) in tasks {
                byIndex[index] = client
                _ = latency.record(nanos)
                if next < options.clients { startOne() }
            }
            connected = (0..<options.clients).map { byIndex[$0]! }
        }
        return (connected, latency)
    }

    private func connectAndLogin(_ index: Int, registry: StatsRegistry) async throws -> (Int, Connected, UInt64) {
        let room = options.rooms > 1 ? "#bench\(index % options.rooms)" : nil
        let senders = options.senders
        let runID = self.runID
        let mail = self.mail
        let tlsContext = self.tlsContext
        let websocket = options.websocket ? "\(options.host):\(options.port[index % options.port.count])" : nil
        // SNI and the name check take a host name; an address is checked against the
        // certificate's IP entries, or not at all without --ca-file.
        let isAddress = (try? SocketAddress(ipAddress: options.host, port: 0)) != nil
        let serverName = options.caFile == nil || isAddress ? nil : options.host
        // 62 500 addresses per 127.a/16, from 127.1.0.1 on: a million clients fit.
        let source = try SocketAddress(
            ipAddress: "127.\(1 + index / 62_500).\(index / 250 % 250).\(index % 250 + 1)", port: 0)
        // A client that will stop reading gets a small receive buffer, as over a real
        // network; otherwise loopback's autotuned buffers (up to 32 MiB here) would hide
        // the server's own queue for a long time.
        let willBeSlow = options.mode == .slow && index >= senders && index < senders + options.slow
        var bootstrap = ClientBootstrap(group: group)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .bind(to: source)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tlsContext, serverHostname: serverName))
                    }
                    if let websocket {
                        try channel.pipeline.syncOperations.addHandler(WebSocketFraming(host: websocket))
                    }
                    let client = BenchClient(
                        index: index, room: room, senders: senders,
                        stats: registry.stats(on: channel.eventLoop), mail: mail, runID: runID)
                    try channel.pipeline.syncOperations.addHandler(client)
                }
            }
        if willBeSlow { bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: 16384) }
        let channel =
            try await bootstrap
            .connect(host: options.host, port: options.port[index % options.port.count]).get()
        let lineBytes = options.lineBytes
        let (handler, nanos) = try await channel.eventLoop.flatSubmit {
            () -> EventLoopFuture<(NIOLoopBound<BenchClient>, UInt64)> in
            guard let client = try? channel.pipeline.syncOperations.handler(type: BenchClient.self) else {
                return channel.eventLoop.makeFailedFuture(BenchError.closed("client \(index) lost its handler"))
            }
            client.lineBytes = lineBytes
            let done = channel.eventLoop.makePromise(of: Void.self)
            client.startLogin(done)
            return done.futureResult.assumeIsolated().map {
                (NIOLoopBound(client, eventLoop: channel.eventLoop), UInt64(client.loginLatency.nanoseconds))
            }.nonisolated()
        }.get()
        return (index, Connected(channel: channel, handler: handler), nanos)
    }

    /// Runs senders and measures; with `slowAfter`, a second phase follows in which that
    /// many clients have stopped reading.
    /// - Returns: the phases, and for the slow clients the seconds from when each stopped
    ///   reading until the server disconnected it (`nil`: still connected).
    private func fanout(
        _ clients: [Connected], registry: StatsRegistry, slowAfter: Int?
    ) async throws
        -> ([Report.Phase], [Double?])
    {
        let senderCount = min(options.senders, clients.count)
        let closedLoop = options.rate <= 0
        let interval = closedLoop ? TimeAmount.zero : .nanoseconds(Int64(1e9 * Double(senderCount) / options.rate))
        var pacers: [FixedRatePacer] = []
        for (senderIndex, sender) in clients.prefix(senderCount).enumerated() {
            let window = options.window
            let handler = sender.handler
            let loop = sender.channel.eventLoop
            try await loop.submit {
                let client = handler.value
                client.senderIndex = senderIndex
                client.closedLoop = closedLoop
                if closedLoop { for _ in 0..<window { client.send() } }
            }.get()
            if !closedLoop {
                // Senders are spread evenly over one interval.
                let offset = TimeAmount.nanoseconds(interval.nanoseconds * Int64(senderIndex) / Int64(senderCount))
                let pacer = FixedRatePacer(start: .now() + offset, interval: interval)
                pacers.append(pacer)
                try await loop.submit { pacer.start(on: loop) { handler.value.send(stampedAt: $0) } }.get()
            }
        }
        try await registry.reset(recording: false)
        try await Task.sleep(for: .seconds(options.warmup))

        var phases: [Report.Phase] = []
        phases.append(try await measure(registry: registry, label: "all reading"))
        var slowDisconnects: [Double?] = []
        if let slowCount = slowAfter {
            let slowClients = clients[senderCount..<min(senderCount + slowCount, clients.count)]
            let stoppedAt = NIODeadline.now()
            for client in slowClients {
                let handler = client.handler
                try await client.channel.eventLoop.submit { handler.value.stopReading() }.get()
            }
            phases.append(try await measure(registry: registry, label: "\(slowCount) not reading"))
            let departures = try await registry.collect().departures
            for client in slowClients {
                let handler = client.handler
                let name = try await client.channel.eventLoop.submit { handler.value.username }.get()
                slowDisconnects.append(
                    departures[name].map { Double($0 - stoppedAt.uptimeNanoseconds) / 1e9 })
            }
        }
        for pacer in pacers { pacer.stop() }
        for sender in clients.prefix(senderCount) {
            let handler = sender.handler
            try await sender.channel.eventLoop.submit { handler.value.closedLoop = false }.get()
        }
        // Let the last lines arrive, then count what never did.
        try await Task.sleep(for: .seconds(1))
        var sent: [Int] = []
        for sender in clients.prefix(senderCount) {
            let handler = sender.handler
            sent.append(try await sender.channel.eventLoop.submit { handler.value.nextSequence }.get())
        }
        var missing = 0
        let sentCounts = sent
        for client in clients {
            let handler = client.handler
            missing += try await client.channel.eventLoop.submit {
                handler.value.isSlow || handler.value.disconnectedAt != nil || handler.value.room != nil
                    ? 0 : handler.value.missing(sent: sentCounts)
            }.get()
        }
        if var last = phases.popLast() {
            last.missingAtEnd = missing
            phases.append(last)
        }
        return (phases, slowDisconnects)
    }

    private func measure(registry: StatsRegistry, label: String) async throws -> Report.Phase {
        try await registry.reset(recording: true)
        let serverBefore = ProcessStats.read(pids: options.serverPid)
        let benchBefore = ProcessStats.current()
        let start = ContinuousClock.now
        try await Task.sleep(for: .seconds(options.duration))
        let elapsed = (ContinuousClock.now - start).seconds
        let snapshot = try await registry.collect()
        let serverAfter = ProcessStats.read(pids: options.serverPid)
        let benchAfter = ProcessStats.current()
        try await registry.reset(recording: false)
        var phase = Report.Phase(label: label, seconds: elapsed, stats: snapshot)
        if let serverBefore, let serverAfter {
            phase.serverCPUSeconds = serverAfter.total.cpuSeconds - serverBefore.total.cpuSeconds
            phase.serverUserCPUSeconds = serverAfter.total.userCPUSeconds - serverBefore.total.userCPUSeconds
            phase.serverRSSBytes = serverAfter.total.residentBytes
            if options.serverPid.count > 1 {
                phase.serverCPUSecondsEach = zip(serverAfter.each, serverBefore.each).map {
                    $0.cpuSeconds - $1.cpuSeconds
                }
            }
        }
        phase.benchCPUSeconds = benchAfter.cpuSeconds - benchBefore.cpuSeconds
        return phase
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

/// Calls `body` at start, start + interval, start + 2 x interval, ... on one event loop,
/// against absolute deadlines (no drift), passing each call its intended time: a late call
/// still reports when it should have happened, so delays count as latency (coordinated
/// omission correction).
final class FixedRatePacer: Sendable {
    let start: NIODeadline
    let interval: TimeAmount
    private let running = NIOLockedValueBox(true)

    init(start: NIODeadline, interval: TimeAmount) {
        self.start = start
        self.interval = interval
    }

    func start(on loop: any EventLoop, _ body: @escaping @Sendable (UInt64) -> Void) {
        schedule(0, on: loop, body)
    }

    func stop() {
        running.withLockedValue { $0 = false }
    }

    private func schedule(_ tick: Int64, on loop: any EventLoop, _ body: @escaping @Sendable (UInt64) -> Void) {
        let deadline = start + .nanoseconds(interval.nanoseconds * tick)
        loop.scheduleTask(deadline: deadline) {
            guard self.running.withLockedValue({ $0 }) else { return }
            body(deadline.uptimeNanoseconds)
            self.schedule(tick + 1, on: loop, body)
        }
    }
}
