import Foundation
import NIOCore
import NIOPosix

/// Headless Chromium driven over the W3C WebDriver protocol (Debian's `chromium` and
/// `chromium-driver`): a real browser for the web client's tests. One `chromedriver`
/// process and one browser session per instance; ``quit()`` ends both.
public final class WebDriver: Sendable {
    public static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
    public static let chromedriver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
    public static var isAvailable: Bool { chromium != nil && chromedriver != nil }

    private let driver: SpawnedProcess
    private let base: String
    private let session: String
    private let profile: URL

    /// Starts `chromedriver` on a free loopback port and opens a browser window of the
    /// given size.
    public static func start(width: Int = 1100, height: Int = 720) async throws -> WebDriver {
        guard let chromium, let chromedriver else { throw TestFailure("chromium or chromedriver is not installed") }
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("chromium-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        // chromedriver listens on the port on 127.0.0.1 and on ::1, and exits when the IPv6
        // one is taken (another test's connection can hold it): then a new port, three tries.
        var started: (driver: SpawnedProcess, base: String)?
        var log = ""
        for attempt in 1...3 where started == nil {
            let attemptLog = profile.appendingPathComponent("chromedriver-\(attempt).log").path
            log = attemptLog
            let port = try freeLoopbackPort()
            let driver = try SpawnedProcess(
                chromedriver, ["--port=\(port)", "--allowed-ips=127.0.0.1"], output: attemptLog)
            let base = "http://127.0.0.1:\(port)"
            let portTaken = { ((try? String(contentsOfFile: attemptLog, encoding: .utf8)) ?? "").contains("Exiting") }
            let ready = try await poll(every: .milliseconds(50), timeout: .seconds(20)) {
                let status = try? await request("GET", "\(base)/status")
                return (status?["value"] as? [String: Any])?["ready"] as? Bool == true || portTaken()
            }
            if ready && !portTaken() {
                started = (driver, base)
            } else {
                driver.signal(SIGKILL)
                driver.wait()
                guard portTaken() else { break }
            }
        }
        guard let (driver, base) = started else {
            throw TestFailure(
                "chromedriver did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
        let arguments = [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--disable-extensions", "--window-size=\(width),\(height)", "--user-data-dir=\(profile.path)/profile",
        ]
        let capabilities: [String: Any] = [
            "capabilities": [
                "alwaysMatch": [
                    "browserName": "chrome",
                    "goog:chromeOptions": ["binary": chromium, "args": arguments],
                ]
            ]
        ]
        do {
            let answer = try await request("POST", "\(base)/session", capabilities)
            guard let value = answer["value"] as? [String: Any], let session = value["sessionId"] as? String else {
                throw TestFailure("no WebDriver session: \(answer)")
            }
            return WebDriver(driver: driver, base: base, session: session, profile: profile)
        } catch {
            driver.signal(SIGKILL)
            driver.wait()
            throw error
        }
    }

    private init(driver: SpawnedProcess, base: String, session: String, profile: URL) {
        self.driver = driver
        self.base = base
        self.session = session
        self.profile = profile
    }

    /// Ends the browser session and the driver, and removes the browser's profile.
    public func quit() async {
        _ = try? await Self.request("DELETE", "\(base)/session/\(session)")
        driver.signal(SIGTERM)
        driver.wait()
        try? FileManager.default.removeItem(at: profile)
    }

    public func open(_ url: String) async throws {
        _ = try await command("POST", "url", ["url": url])
    }

    /// Runs JavaScript in the page and returns its result.
    @discardableResult
    public func run(_ script: String, _ arguments: [Any] = []) async throws -> Any? {
        try await command("POST", "execute/sync", ["script": script, "args": arguments])["value"]
    }

    /// Waits (bounded) until `script` returns `true` in the page.
    public func waitUntil(_ script: String, timeout: Duration = .seconds(15), _ what: String) async throws {
        let held = try await poll(every: .milliseconds(50), timeout: timeout) {
            (try? await run(script)) as? Bool == true
        }
        guard held else { throw TestFailure("in the browser, never: \(what)") }
    }

    /// Types into the element `selector` finds, as keys (`\u{E007}` is Enter).
    public func type(_ text: String, into selector: String) async throws {
        let element = try await command("POST", "element", ["using": "css selector", "value": selector])
        guard let found = element["value"] as? [String: Any],
            let id = found["element-6066-11e4-a52e-4f735466cecf"] as? String
        else {
            throw TestFailure("no element \(selector): \(element)")
        }
        _ = try await command("POST", "element/\(id)/value", ["text": text])
    }

    /// The text of the alert the page shows, or `nil` when it shows none.
    public func alertText() async throws -> String? {
        let answer = try await command("GET", "alert/text", allowError: true)
        if let value = answer["value"] as? [String: Any], value["error"] as? String == "no such alert" { return nil }
        return answer["value"] as? String ?? "\(answer)"
    }

    /// Saves a PNG of the window.
    public func screenshot(to path: String) async throws {
        let answer = try await command("GET", "screenshot")
        guard let text = answer["value"] as? String, let png = Data(base64Encoded: text) else {
            throw TestFailure("no screenshot")
        }
        try png.write(to: URL(fileURLWithPath: path))
    }

    private func command(
        _ method: String, _ path: String, _ body: [String: Any]? = nil, allowError: Bool = false
    ) async throws -> [String: Any] {
        try await Self.request(method, "\(base)/session/\(session)/\(path)", body, allowError: allowError)
    }

    private static func request(
        _ method: String, _ url: String, _ body: [String: Any]? = nil, allowError: Bool = false
    ) async throws -> [String: Any] {
        var payload: [UInt8] = []
        if let body {
            payload = Array(try JSONSerialization.data(withJSONObject: body))
        } else if method == "POST" {
            payload = Array("{}".utf8)
        }
        // chromedriver writes its headers without a space after the colon, which
        // Foundation's URLSession on Linux cannot read: a plain HTTP/1.1 exchange instead.
        let (status, data) = try await plainHTTP(method, url, payload)
        let object = (try? JSONSerialization.jsonObject(with: Data(data))) as? [String: Any] ?? [:]
        if status >= 400, !allowError {
            throw TestFailure("WebDriver \(method) \(url): \(status) \(object)")
        }
        return object
    }
}

/// One HTTP/1.1 request on its own connection (`Connection: close`), to a loopback URL.
/// - Returns: the status code and the body.
func plainHTTP(_ method: String, _ url: String, _ body: [UInt8]) async throws -> (Int, [UInt8]) {
    guard let parsed = URLComponents(string: url), let host = parsed.host, let port = parsed.port else {
        throw TestFailure("not a loopback URL: \(url)")
    }
    let group = MultiThreadedEventLoopGroup.singleton
    let received = group.any().makePromise(of: [UInt8].self)
    let channel: any Channel
    do {
        channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(done: received))
                }
            }
            .connect(host: host, port: port).get()
    } catch {
        received.fail(error)
        throw error
    }
    var request = "\(method) \(parsed.percentEncodedPath) HTTP/1.1\r\nHost: \(host):\(port)\r\n"
    request += "Connection: close\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n"
    try await channel.writeAndFlush(ByteBuffer(bytes: Array(request.utf8) + body))
    let timeout = group.any().scheduleTask(in: .seconds(30)) { channel.close(promise: nil) }
    defer { timeout.cancel() }
    let response = try await received.futureResult.get()
    guard let end = response.firstRange(of: Array("\r\n\r\n".utf8)) else {
        throw TestFailure("no HTTP response from \(url)")
    }
    let head = String(decoding: response[..<end.lowerBound], as: UTF8.self)
    guard let status = head.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else {
        throw TestFailure("no HTTP status from \(url): \(head)")
    }
    return (status, Array(response[end.upperBound...]))
}

/// Collects a response until the server closes the connection.
private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let done: EventLoopPromise<[UInt8]>
    private var bytes: [UInt8] = []
    private var complete = false

    init(done: EventLoopPromise<[UInt8]>) { self.done = done }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytes += unwrapInboundIn(data).readableBytesView
        // Done when the body is whole: not every server closes after answering.
        guard let end = bytes.firstRange(of: Array("\r\n\r\n".utf8)) else { return }
        let head = String(decoding: bytes[..<end.lowerBound], as: UTF8.self).lowercased()
        let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
            .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) }
        if let length, bytes.count - end.upperBound >= length, !complete {
            complete = true
            done.succeed(bytes)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !complete {
            complete = true
            done.succeed(bytes)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// A TCP port nobody listens on now (bound, read and released: a process started next
/// can take it).
public func freeLoopbackPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw TestFailure("socket: \(errno)") }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    let bound = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard bound == 0 else { throw TestFailure("bind: \(errno)") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
    }
    guard named == 0 else { throw TestFailure("getsockname: \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Where a test run leaves what people look at afterwards (screenshots):
/// `TEST_OUTPUT_DIR`, or `.build/test-output` in the package.
public func testOutputFolder() throws -> URL {
    let folder =
        ProcessInfo.processInfo.environment["TEST_OUTPUT_DIR"].map { URL(fileURLWithPath: $0) }
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/test-output")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder
}
