import ChatCore
import ChatTestSupport
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import ChatServer

/// Through a real HAProxy (Debian's `haproxy`, started here on loopback) sending PROXY
/// protocol headers, version 2 and version 1: the clients' own addresses are what the
/// server counts.
@Suite(.serialized) struct HAProxyTests {
    @Test(arguments: ["send-proxy-v2", "send-proxy"])
    func clientsBehindHAProxyKeepTheirAddresses(_ mode: String) async throws {
        try await withTestServer(configure: { configuration in
            configuration.proxyProtocol = ProxyProtocolSettings(
                trustedProxies: IPNetwork.list("127.0.0.1/32")!, headerTimeout: .seconds(5))
        }) { server in
            let proxy = try await HAProxy.startListening(backendPort: server.port, mode: mode)
            defer { proxy.stop() }

            func connect(from source: String) async throws -> TestClient {
                try await TestClient.connect(port: proxy.port, from: source, group: server.group)
            }
            // Two clients from two addresses: two IPs to the server.
            let alice = try await connect(from: "127.0.0.2")
            let bob = try await connect(from: "127.0.0.3")
            #expect(try await alice.readLines(3) == ServerLine.welcome)
            #expect(try await bob.readLines(3) == ServerLine.welcome)
            let occupancy = try await server.waitForOccupancy { $0.connections == 2 }
            #expect(occupancy.ipSlots == 2)
            // Two from one address: the per-IP limit, naming the real address.
            let again = try await connect(from: "127.0.0.3")
            #expect(try await again.readLine() == "ERROR: IP address 127.0.0.3 already has an active connection")
            _ = try await again.waitForClose()
            // And the user logs in and chats through the proxy.
            try await server.logIn(alice, as: "alice")
            try await alice.send("hello through haproxy")
            #expect(try await alice.readLine() == "[alice]: hello through haproxy")
            #expect(server.log.text.contains("ip=127.0.0.2"))
        }
    }

    /// docs/OPERATIONS.md's HAProxy set-up: an HTTP health check on `/health`. A server that
    /// begins to shut down answers 503 and HAProxy takes it out of rotation while its
    /// connections still drain (the check saw the 503, not a closed port).
    @Test func aServerShuttingDownLeavesHAProxysRotation() async throws {
        try await withTestServer(configure: { configuration in
            // 127.0.0.9 stands in for a second proxy, for the client that holds the drain open.
            configuration.proxyProtocol = ProxyProtocolSettings(
                trustedProxies: IPNetwork.list("127.0.0.1/32,127.0.0.9/32")!, headerTimeout: .seconds(5))
            configuration.metrics = MetricsSettings(host: "127.0.0.1", port: 0)
            // The drain (held open by the stalled client below) must outlast HAProxy's
            // checks and the last request, also under ThreadSanitizer, where 5 s was not
            // always enough.
            configuration.shutdownTimeout = .seconds(15)
            configuration.maxSendQueueBytes = 64 * 1024 * 1024
        }) { server in
            let metricsPort = try #require(try await server.server.localAddress(of: "metrics")?.port)
            let proxy = try await HAProxy.startListening(
                backendPort: server.port, mode: "send-proxy-v2", healthCheckPort: metricsPort)
            defer { proxy.stop() }
            #expect(try await proxy.waitForServerStatus("UP") == "UP")

            let stuck = try await TestClient.connect(
                port: server.port, from: "127.0.0.9", group: server.group, receiveBufferSize: 2048)
            try await stuck.sendRaw(Array("PROXY TCP4 192.0.2.7 127.0.0.1 40000 8888\r\n".utf8))
            #expect(try await stuck.readLines(3) == ServerLine.welcome)
            try await server.logIn(stuck, as: "stuck")
            try await stuck.stallWithAFullSendQueue()

            server.server.shutdown()
            #expect(try await proxy.waitForServerStatus("DOWN") == "DOWN")
            // The endpoint is still up, saying why.
            #expect(try await httpRequest(port: metricsPort, path: "/health").status == 503)
        }
    }
}

/// An `haproxy` process in TCP mode, its frontend on a free loopback port, its one backend
/// the test server with a PROXY protocol header.
///
/// It runs under a shell that ends it when its standard input closes: when ``stop()``
/// closes it, and also when the test process dies without stopping it (a crash under a
/// sanitizer once left two haproxy processes running). Its output goes to a file.
final class HAProxy: Sendable {
    let port: Int
    private let process: Process
    private let folder: URL
    private let lifeline: FileHandle

    private init(port: Int, process: Process, folder: URL, lifeline: FileHandle) {
        self.port = port
        self.process = process
        self.folder = folder
        self.lifeline = lifeline
    }

    private var output: String {
        (try? String(contentsOf: folder.appendingPathComponent("haproxy.log"), encoding: .utf8)) ?? ""
    }

    static var executable: String {
        get throws {
            for path in ["/usr/sbin/haproxy", "/usr/bin/haproxy", "/usr/local/sbin/haproxy"]
            where FileManager.default.isExecutableFile(atPath: path) {
                return path
            }
            throw TestFailure("haproxy is not installed (scripts/test.sh installs it: apt-get install haproxy)")
        }
    }

    /// - Parameter healthCheckPort: the server's metrics port, to check `GET /health` on
    ///   (every 100 ms; one answer changes the state).
    static func start(backendPort: Int, mode: String, healthCheckPort: Int? = nil) throws -> HAProxy {
        try start(backends: [(backendPort, healthCheckPort)], mode: mode)
    }

    /// In front of several servers (a cluster's nodes), in turn; each with the port of its
    /// health check, if any.
    static func start(backends: [(port: Int, healthCheckPort: Int?)], mode: String) throws -> HAProxy {
        let executable = try executable
        let port = try freePort()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("haproxy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let servers = backends.enumerated().map { index, backend in
            let check = backend.healthCheckPort.map { " check port \($0) inter 100ms fall 1 rise 1" } ?? ""
            return "    server node\(index + 1) 127.0.0.1:\(backend.port) \(mode)\(check)"
        }.joined(separator: "\n")
        let checksHealth = backends.contains { $0.healthCheckPort != nil }
        let configuration = """
            global
                maxconn 64
                stats socket \(folder.appendingPathComponent("admin.sock").path)
            defaults
                mode tcp
                timeout connect 5s
                timeout client 60s
                timeout server 60s
            frontend chat
                bind 127.0.0.1:\(port)
                default_backend chat_servers
            backend chat_servers
                \(checksHealth ? "option httpchk GET /health" : "")
            \(servers)

            """
        let file = folder.appendingPathComponent("haproxy.cfg")
        try configuration.write(to: file, atomically: true, encoding: .utf8)
        let log = folder.appendingPathComponent("haproxy.log")
        guard FileManager.default.createFile(atPath: log.path, contents: nil),
            let logHandle = FileHandle(forWritingAtPath: log.path)
        else { throw TestFailure("cannot create haproxy's log file") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        // haproxy -db stays in the foreground; the shell waits for its input to close, then
        // ends haproxy and waits for it.
        process.arguments = [
            "-c",
            #""$0" -db -f "$1" </dev/null & child=$!; echo "$child" > "$2"; cat >/dev/null; kill "$child"; wait "$child""#,
            executable, file.path, folder.appendingPathComponent("haproxy.pid").path,
        ]
        let lifeline = Pipe()
        // Not inherited by processes other tests start meanwhile (tmux, chromedriver, redis):
        // one of them holding the write end would keep haproxy's shell from ever seeing it
        // close. The shell itself gets the read end as its standard input, a copy.
        for handle in [lifeline.fileHandleForReading, lifeline.fileHandleForWriting] {
            _ = fcntl(handle.fileDescriptor, F_SETFD, FD_CLOEXEC)
        }
        process.standardInput = lifeline
        process.standardOutput = logHandle
        process.standardError = logHandle
        try process.run()
        try? logHandle.close()
        return HAProxy(port: port, process: process, folder: folder, lifeline: lifeline.fileHandleForWriting)
    }

    /// Starts haproxy and waits until it listens, on a fresh port each try: the port is
    /// picked free, but another test may bind it before haproxy does (up to three tries).
    static func startListening(backendPort: Int, mode: String, healthCheckPort: Int? = nil) async throws -> HAProxy {
        try await startListening(backends: [(backendPort, healthCheckPort)], mode: mode)
    }

    static func startListening(backends: [(port: Int, healthCheckPort: Int?)], mode: String) async throws -> HAProxy {
        var failure: (any Error)?
        for _ in 0..<3 {
            let proxy = try start(backends: backends, mode: mode)
            do {
                try await proxy.waitUntilListening()
                return proxy
            } catch {
                failure = error
                proxy.stop()
            }
        }
        throw failure!
    }

    /// Waits (bounded) until haproxy has finished starting (its stats socket exists: it is
    /// renamed into place once every listener is bound, so the frontend is haproxy's own)
    /// and the frontend accepts connections.
    func waitUntilListening(timeout: Duration = .seconds(10)) async throws {
        let socket = folder.appendingPathComponent("admin.sock").path
        let listening = try await poll(every: .milliseconds(20), timeout: timeout) {
            guard process.isRunning, !output.contains("cannot bind") else {
                throw TestFailure("haproxy did not start: \(output)")
            }
            return FileManager.default.fileExists(atPath: socket) && Self.accepts(port: port)
        }
        if listening { return }
        throw TestFailure("haproxy did not listen on \(port): \(output)")
    }

    /// A backend server's state as HAProxy's stats socket reports it (`UP`, `DOWN`, ...).
    func serverStatus(of server: String = "node1") async throws -> String {
        let socket = folder.appendingPathComponent("admin.sock").path
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(unixDomainSocketPath: socket) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TextOnTheLoop())
                    return try NIOAsyncChannel<String, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        var text = ""
        try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "show stat\n"))
            for try await chunk in inbound { text += chunk }
        }
        // CSV with a header line: "# pxname,svname,...,status,...".
        let lines = text.split(separator: "\n")
        guard let header = lines.first?.dropFirst(2).split(separator: ",", omittingEmptySubsequences: false),
            let column = header.firstIndex(of: "status")
        else { throw TestFailure("unexpected stats: \(text)") }
        for line in lines.dropFirst() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            if fields.count > column, fields[0] == "chat_servers", fields[1] == server {
                return String(fields[column])
            }
        }
        throw TestFailure("no \(server) in the stats: \(text)")
    }

    /// Waits (bounded) until HAProxy reports the server in `status`; returns the last status.
    /// The stats socket may appear a moment after the frontend accepts connections (HAProxy
    /// renames it into place at the end of its start): until then the answer is "no socket".
    func waitForServerStatus(
        _ status: String, of server: String = "node1", timeout: Duration = .seconds(10)
    ) async throws -> String {
        var current = "no socket"
        _ = try await poll(every: .milliseconds(20), timeout: timeout) {
            if let answer = try? await serverStatus(of: server) { current = answer }
            return current == status
        }
        return current
    }

    /// Closes the lifeline (the shell then ends haproxy) and waits for both to exit.
    /// Ends haproxy: its shell sees the lifeline close and stops it. Bounded: if another
    /// process still holds the lifeline (a child that inherited it), haproxy is ended by its
    /// pid instead of waiting (Foundation's `waitUntilExit` would spin for as long).
    func stop() {
        try? lifeline.close()
        for _ in 0..<250 where process.isRunning { usleep(20_000) }
        if process.isRunning {
            let pidFile = folder.appendingPathComponent("haproxy.pid").path
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                kill(pid, SIGKILL)
            }
            process.terminate()
            for _ in 0..<250 where process.isRunning { usleep(20_000) }
        }
        try? FileManager.default.removeItem(at: folder)
    }

    /// A port nothing listens on right now (bound and released by the kernel's choice).
    private static func freePort() throws -> Int {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? channel.close().wait() }
        guard let port = channel.localAddress?.port else { throw TestFailure("no free port") }
        return port
    }

    private static func accepts(port: Int) -> Bool {
        guard
            let channel = try? ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).wait()
        else { return false }
        try? channel.close().wait()
        return true
    }
}

/// Turns what the stats socket sends into text on the channel's event loop. A received
/// buffer handed to a task instead is reused by NIO's pooled receive allocator once the task
/// lets go of it, an ordering kept by reference counts in the Swift runtime, which
/// ThreadSanitizer does not see (CI's run of 2026-12-08 reported it as a race).
private final class TextOnTheLoop: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = String

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(wrapInboundOut(String(buffer: unwrapInboundIn(data))))
    }
}
