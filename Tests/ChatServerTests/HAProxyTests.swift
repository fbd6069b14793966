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
            let proxy = try HAProxy.start(backendPort: server.port, mode: mode)
            defer { proxy.stop() }
            try await proxy.waitUntilListening()

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

    static func start(backendPort: Int, mode: String) throws -> HAProxy {
        let executable = try executable
        let port = try freePort()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("haproxy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let configuration = """
            global
                maxconn 64
            defaults
                mode tcp
                timeout connect 5s
                timeout client 60s
                timeout server 60s
            frontend chat
                bind 127.0.0.1:\(port)
                default_backend chat_servers
            backend chat_servers
                server node1 127.0.0.1:\(backendPort) \(mode)

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
            "-c", #""$0" -db -f "$1" </dev/null & child=$!; cat >/dev/null; kill "$child"; wait "$child""#,
            executable, file.path,
        ]
        let lifeline = Pipe()
        process.standardInput = lifeline
        process.standardOutput = logHandle
        process.standardError = logHandle
        try process.run()
        try? logHandle.close()
        return HAProxy(port: port, process: process, folder: folder, lifeline: lifeline.fileHandleForWriting)
    }

    /// Waits (bounded) until the frontend accepts connections.
    func waitUntilListening(timeout: Duration = .seconds(10)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard process.isRunning else {
                throw TestFailure("haproxy exited: \(output)")
            }
            if Self.accepts(port: port) { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("haproxy did not listen on \(port): \(output)")
    }

    /// Closes the lifeline (the shell then ends haproxy) and waits for both to exit.
    func stop() {
        try? lifeline.close()
        process.waitUntilExit()
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
