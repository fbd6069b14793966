import ChatTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import Testing

@testable import RedisClient

/// The client against a real `redis-server` started by each test.
@Suite(.serialized, .enabled(if: RedisServerProcess.executable != nil, "redis-server is not installed"))
struct RedisConnectionTests {
    private func withRedis(
        _ arguments: [String] = [], _ body: (RedisServerProcess) async throws -> Void
    ) async throws {
        let server = try await RedisServerProcess.started(arguments)
        defer { server.stop() }
        try await body(server)
    }

    @Test func everyRESP3TypeFromARealServer() async throws {
        try await withRedis { server in
            let redis = try await RedisConnection.connect(.init(port: server.port, clientName: "chat-test"))
            defer { Task { await redis.close() } }
            #expect(try await redis.send(RESPCommand(["SET", "k", "v"])) == .simpleString("OK"))
            #expect(try await redis.send(RESPCommand(["GET", "k"])) == .bulk("v"))
            #expect(try await redis.send(RESPCommand(["INCR", "n"])) == .integer(1))
            #expect(try await redis.send(RESPCommand(["GET", "missing"])) == .null)
            // DEBUG PROTOCOL answers with each RESP3 type.
            let expected: [(String, RESPValue)] = [
                ("string", .bulk("Hello World")), ("integer", .integer(12345)), ("double", .double(3.141)),
                ("bignum", .bigNumber("1234567999999999999999999999999999999")), ("null", .null),
                ("true", .boolean(true)), ("false", .boolean(false)),
                ("verbatim", .verbatimString(format: "txt", text: "This is a verbatim\nstring")),
                ("array", .array([.integer(0), .integer(1), .integer(2)])),
                ("set", .set([.integer(0), .integer(1), .integer(2)])),
                (
                    "map",
                    .map([
                        .init(.integer(0), .boolean(false)), .init(.integer(1), .boolean(true)),
                        .init(.integer(2), .boolean(false)),
                    ])
                ),
            ]
            for (type, value) in expected {
                #expect(try await redis.send(RESPCommand(["DEBUG", "PROTOCOL", type])) == value, "\(type)")
            }
            // An attribute is read past, to the value it describes.
            #expect(
                try await redis.send(RESPCommand(["DEBUG", "PROTOCOL", "attrib"]))
                    == .bulk("Some real reply following the attribute"))
            // HELLO answered with a map that says RESP3.
            let hello = try await redis.send(RESPCommand(["HELLO", "3"]))
            guard case .map(let pairs) = hello else {
                Issue.record("HELLO is not a map: \(hello)")
                return
            }
            #expect(pairs.contains { $0.key == .bulk("proto") && $0.value == .integer(3) })
            #expect(try await redis.send(RESPCommand(["CLIENT", "GETNAME"])) == .bulk("chat-test"))
        }
    }

    @Test func errorsAreTyped() async throws {
        try await withRedis { server in
            let redis = try await RedisConnection.connect(.init(port: server.port))
            defer { Task { await redis.close() } }
            await #expect(throws: RedisError.server("ERR unknown command 'NOPE', with args beginning with: ")) {
                try await redis.send(RESPCommand(["NOPE"]))
            }
            _ = try await redis.send(RESPCommand(["SET", "s", "x"]))
            await #expect(
                throws: RedisError.server("WRONGTYPE Operation against a key holding the wrong kind of value")
            ) {
                try await redis.send(RESPCommand(["LPUSH", "s", "y"]))
            }
            // The connection goes on after an error reply.
            #expect(try await redis.send(RESPCommand(["PING"])) == .simpleString("PONG"))
        }
    }

    @Test func authenticationWithHello() async throws {
        try await withRedis(["--requirepass", "s3cret"]) { server in
            let redis = try await RedisConnection.connect(.init(port: server.port, password: "s3cret"))
            #expect(try await redis.send(RESPCommand(["PING"])) == .simpleString("PONG"))
            await redis.close()
            await #expect(throws: RedisError.self) {
                try await RedisConnection.connect(.init(port: server.port, password: "wrong"))
            }
        }
    }

    @Test func pipelinedCommandsAreAnsweredInOrderUnderLoad() async throws {
        try await withRedis { server in
            let redis = try await RedisConnection.connect(.init(port: server.port))
            defer { Task { await redis.close() } }
            let commands = (0..<5_000).map { _ in RESPCommand(["INCR", "counter"]) }
            let results = await redis.pipeline(commands)
            #expect(results.count == 5_000)
            #expect(
                results.enumerated().allSatisfy { index, result in (try? result.get()) == .integer(Int64(index + 1)) })
            // Concurrent senders on one connection: each gets its own answer.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for sender in 0..<8 {
                    group.addTask {
                        for n in 0..<200 {
                            let key = "k\(sender)-\(n)"
                            _ = try await redis.send(RESPCommand(["SET", key, "\(sender):\(n)"]))
                            #expect(try await redis.send(RESPCommand(["GET", key])) == .bulk("\(sender):\(n)"))
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test func aReplySplitOverManyReads() async throws {
        try await withRedis { server in
            let redis = try await RedisConnection.connect(.init(port: server.port))
            defer { Task { await redis.close() } }
            // 256 KiB: several reads of the socket.
            let big = String(repeating: "0123456789abcdef", count: 16 * 1024)
            _ = try await redis.send(RESPCommand(["SET", "big", big]))
            #expect(try await redis.send(RESPCommand(["GET", "big"])) == .bulk(big))
            let list = (0..<2000).map { "item-\($0)" }
            _ = try await redis.send(RESPCommand(["RPUSH", "list"] + list))
            #expect(try await redis.send(RESPCommand(["LRANGE", "list", "0", "-1"])) == .array(list.map { .bulk($0) }))
        }
    }

    @Test func commandsSentInOneEventLoopTickLeaveInOneWrite() async throws {
        try await withRedis { server in
            let redis = try await RedisConnection.connect(.init(port: server.port))
            let observer = try await RedisConnection.connect(.init(port: server.port))
            defer {
                Task {
                    await redis.close()
                    await observer.close()
                }
            }
            // Redis counts the reads it made from all its clients.
            func readsProcessed() async throws -> Int {
                let info = try await observer.send(RESPCommand(["INFO", "stats"])).string ?? ""
                let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("total_reads_processed:") }
                return try #require(line.flatMap { Int($0.dropFirst("total_reads_processed:".count)) })
            }
            let before = try await readsProcessed()
            // 200 appends from one task on the connection's loop, as a loop handing on its
            // clients' lines sends them: about 8 KiB, one write, which Redis takes in one read.
            let answers = try await redis.eventLoop.submit {
                (0..<200).map { _ in redis.sendWithoutWaiting(RESPCommand(["RPUSH", "lines", "a line of chat"])) }
            }.get()
            for answer in answers { _ = try await answer.get() }
            let after = try await readsProcessed()
            // The observer's own INFO is one of the reads; 200 writes would be up to 200.
            #expect(after - before <= 3)
            #expect(try await observer.send(RESPCommand(["LLEN", "lines"])) == .integer(200))
        }
    }

    @Test func pushFramesGoApartFromReplies() async throws {
        try await withRedis { server in
            let pushes = NIOLockedValueBox<[RESPValue]>([])
            let subscriber = try await RedisConnection.connect(.init(port: server.port)) { push in
                pushes.withLockedValue { $0.append(push) }
            }
            defer { Task { await subscriber.close() } }
            let publisher = try await RedisConnection.connect(.init(port: server.port))
            defer { Task { await publisher.close() } }
            // In RESP3 the subscription's confirmation is itself a push, not a reply: nothing
            // waits for one, and PING, after it, gets its own answer.
            try await subscriber.sendExpectingNoReply(RESPCommand(["SUBSCRIBE", "news"]))
            #expect(try await subscriber.send(RESPCommand(["PING"])) == .simpleString("PONG"))
            #expect(try await publisher.send(RESPCommand(["PUBLISH", "news", "hello"])) == .integer(1))
            _ = try await poll(timeout: .seconds(5)) { pushes.withLockedValue { $0.count } >= 2 }
            #expect(
                pushes.withLockedValue { $0 } == [
                    .push([.bulk("subscribe"), .bulk("news"), .integer(1)]),
                    .push([.bulk("message"), .bulk("news"), .bulk("hello")]),
                ])
        }
    }

    @Test func theServerDyingMidPipelineFailsWhatWaitsAndNothingHangs() async throws {
        let server = try await RedisServerProcess.started()
        let redis = try await RedisConnection.connect(.init(port: server.port))
        // The server dies in the middle of a pipeline: it sleeps on the second command
        // (DEBUG SLEEP), and is killed meanwhile.
        let commands =
            [RESPCommand(["SET", "first", "value"]), RESPCommand(["DEBUG", "SLEEP", "2"])]
            + (0..<100).map { RESPCommand(["SET", "key-\($0)", "value"]) }
        async let results = redis.pipeline(commands)
        // Redis is asleep in DEBUG SLEEP by then; it says nothing while it sleeps.
        try await Task.sleep(for: .milliseconds(300))
        server.kill()
        let outcome = await results
        // Redis writes a batch's answers after the batch: even the first one had not left
        // it. Every command fails, as a closed connection (whether it ran is not known).
        #expect(outcome.count == 102)
        #expect(outcome.allSatisfy { if case .failure(.connectionClosed) = $0 { true } else { false } })
        await #expect(throws: RedisError.connectionClosed) { try await redis.send(RESPCommand(["PING"])) }
        // A server that is gone: connecting fails, typed.
        await #expect(throws: RedisError.self) { try await RedisConnection.connect(.init(port: server.port)) }
    }

    @Test func aCommandWithoutAnAnswerTimesOut() async throws {
        try await withRedis { server in
            let redis = try await RedisConnection.connect(.init(port: server.port, commandTimeout: .milliseconds(300)))
            // BLPOP on an empty list blocks longer than the timeout.
            await #expect(throws: RedisError.timeout) { try await redis.send(RESPCommand(["BLPOP", "empty", "5"])) }
            // The connection closes with it (at once, or a moment later on its loop).
            #expect(try await poll(timeout: .seconds(2)) { !redis.isActive })
            await #expect(throws: RedisError.connectionClosed) { try await redis.send(RESPCommand(["PING"])) }
        }
    }

    /// One timer watches every command's deadline: commands answered in time leave it
    /// alone, and a command sent later still times out a full timeout after it was sent
    /// (not at an earlier command's deadline); the ones behind it fail as closed.
    @Test func everyCommandHasItsDeadlineWatchedByOneTimer() async throws {
        try await withRedis { server in
            let timeout = Duration.milliseconds(400)
            let redis = try await RedisConnection.connect(.init(port: server.port, commandTimeout: timeout))
            for _ in 0..<3 { #expect(try await redis.send(RESPCommand(["PING"])) == .simpleString("PONG")) }
            let sent = ContinuousClock.now
            // Appends without waiting, as a cluster node sends them, behind a read that blocks.
            let blocked = redis.sendWithoutWaiting(RESPCommand(["BLPOP", "empty", "5"]))
            let behind = (0..<3).map { redis.sendWithoutWaiting(RESPCommand(["SET", "k\($0)", "v"])) }
            await #expect(throws: RedisError.timeout) { try await blocked.get() }
            #expect(ContinuousClock.now - sent >= timeout)
            for future in behind {
                await #expect(throws: RedisError.connectionClosed) { try await future.get() }
            }
        }
    }
}

/// `rediss://`: the client over TLS to a real `redis-server` with a certificate the test mints.
@Suite(.serialized) struct RedisTLSTests {
    @Test func aRedissURLConnectsOverTLSAndChecksTheCertificate() async throws {
        let certificates = try TestCertificates.mint()
        defer { certificates.remove() }
        // A free port may be taken by another test before redis-server binds it: up to three.
        var started: (server: RedisServerProcess, port: Int)?
        for _ in 0..<3 where started == nil {
            let port = try RedisServerProcess.freePort()
            let server = try RedisServerProcess(
                [
                    "--port", "0", "--tls-port", "\(port)", "--tls-cert-file", certificates.serverCertificatePath,
                    "--tls-key-file", certificates.serverKeyPath, "--tls-ca-cert-file", certificates.caCertificatePath,
                    "--tls-auth-clients", "no",
                ])
            do {
                try await server.waitUntilReady()
                started = (server, port)
            } catch {
                server.kill()
            }
        }
        let (server, tlsPort) = try #require(started)
        defer { server.stop() }

        let url = try RedisURL(parsing: "rediss://localhost:\(tlsPort)")
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(certificates.caCertificatePath)
        let redis = try await RedisConnection.connect(.init(url: url, clientName: "chat-tls", tls: tls))
        #expect(try await redis.send(RESPCommand(["SET", "k", "over tls"])) == .simpleString("OK"))
        #expect(try await redis.send(RESPCommand(["GET", "k"])) == .bulk("over tls"))
        await redis.close()

        // Without the test's CA the certificate is not trusted: no connection.
        await #expect(throws: RedisError.self) {
            _ = try await RedisConnection.connect(.init(url: url, connectTimeout: .seconds(3)))
        }
    }
}

/// Connecting again and again with backoff until a server is there.
@Suite(.serialized) struct RedisReconnectTests {
    @Test func connectingRetriesWithBackoffUntilTheServerIsUp() async throws {
        // The port is picked free, but another test's server or client may take it in the
        // meantime: then the scenario starts again on another port (at most three times).
        for attempt in 1...3 {
            let port = try RedisServerProcess.freePort()
            let failures = NIOLockedValueBox(0)
            let connecting = Task {
                var backoff = ReconnectBackoff(initial: .milliseconds(50), maximum: .milliseconds(200))
                return await RedisConnection.connect(
                    .init(port: port, connectTimeout: .seconds(1)), retryingWith: &backoff, shouldStop: { false },
                    failed: { _ in failures.withLockedValue { $0 += 1 } })
            }
            // Nothing listens yet: the attempts fail, then a server comes up on that port.
            _ = try await poll(timeout: .seconds(5)) { failures.withLockedValue { $0 } >= 2 }
            let failed = failures.withLockedValue { $0 }
            let server = try RedisServerProcess(port: port)
            defer { server.stop() }
            do {
                try await server.waitUntilReady()
            } catch  where attempt < 3 && "\(error)".contains("could not listen") {
                connecting.cancel()
                await connecting.value?.close()
                continue
            }
            #expect(failed >= 2)
            let redis = try #require(await connecting.value)
            #expect(try await redis.send(RESPCommand(["PING"])) == .simpleString("PONG"))
            await redis.close()
            return
        }
    }

    @Test func connectingGivesUpWhenToldToStop() async throws {
        let port = try RedisServerProcess.freePort()
        let attempts = NIOLockedValueBox(0)
        var backoff = ReconnectBackoff(initial: .milliseconds(10), maximum: .milliseconds(20))
        let connection = await RedisConnection.connect(
            .init(port: port, connectTimeout: .seconds(1)), retryingWith: &backoff,
            shouldStop: { attempts.withLockedValue { $0 } >= 3 },
            failed: { _ in attempts.withLockedValue { $0 += 1 } })
        #expect(connection == nil)
        #expect(attempts.withLockedValue { $0 } == 3)
    }
}
