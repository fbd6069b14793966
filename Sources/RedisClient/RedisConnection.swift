import NIOCore
import NIOPosix
import NIOSSL

/// One connection to a Redis server speaking RESP3: `HELLO 3` (with AUTH and a client name)
/// on connect, then commands, pipelined and answered in order. Push frames go to `onPush`.
public final class RedisConnection: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var username: String?
        /// Never logged.
        public var password: String?
        public var clientName: String?
        public var database: Int?
        public var connectTimeout: Duration
        public var commandTimeout: Duration
        /// TLS (`rediss://`): the client configuration; the server's name is `host`.
        public var tls: TLSConfiguration?

        public init(
            host: String = "127.0.0.1", port: Int = 6379, username: String? = nil, password: String? = nil,
            clientName: String? = nil, database: Int? = nil, connectTimeout: Duration = .seconds(5),
            commandTimeout: Duration = .seconds(5), tls: TLSConfiguration? = nil
        ) {
            self.host = host
            self.port = port
            self.username = username
            self.password = password
            self.clientName = clientName
            self.database = database
            self.connectTimeout = connectTimeout
            self.commandTimeout = commandTimeout
            self.tls = tls
        }

        /// The settings of a URL (`rediss://` with the system's trust roots, or `tls`).
        public init(
            url: RedisURL, clientName: String? = nil, connectTimeout: Duration = .seconds(5),
            commandTimeout: Duration = .seconds(5), tls: TLSConfiguration? = nil
        ) {
            self.init(
                host: url.host, port: url.port, username: url.username, password: url.password,
                clientName: clientName, database: url.database, connectTimeout: connectTimeout,
                commandTimeout: commandTimeout,
                tls: url.usesTLS ? (tls ?? .makeClientConfiguration()) : nil)
        }
    }

    private let channel: any Channel
    /// The server this connection was made to, as it was given (not resolved).
    public let host: String
    public let port: Int

    private init(channel: any Channel, host: String, port: Int) {
        self.channel = channel
        self.host = host
        self.port = port
    }

    /// Connects and says `HELLO 3` (with AUTH when a password is set), then `SELECT`s the
    /// database when one is set.
    /// - Throws: ``RedisError/connectFailed(_:)``, or ``RedisError/server(_:)`` when the
    ///   server refuses the handshake (a wrong password).
    public static func connect(
        _ configuration: Configuration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onPush: @escaping @Sendable (RESPValue) -> Void = { _ in }
    ) async throws -> RedisConnection {
        let channel: any Channel
        do {
            let sslContext = try configuration.tls.map { try NIOSSLContext(configuration: $0) }
            let serverName = Self.isIPAddress(configuration.host) ? nil : configuration.host
            channel = try await ClientBootstrap(group: group)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .connectTimeout(TimeAmount(configuration.connectTimeout))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let sslContext {
                            try channel.pipeline.syncOperations.addHandler(
                                NIOSSLClientHandler(context: sslContext, serverHostname: serverName))
                        }
                        try channel.pipeline.syncOperations.addHandler(
                            RESPChannelHandler(
                                commandTimeout: TimeAmount(configuration.commandTimeout), onPush: onPush))
                    }
                }
                .connect(host: configuration.host, port: configuration.port)
                .get()
        } catch {
            throw RedisError.connectFailed("\(error)")
        }
        let connection = RedisConnection(channel: channel, host: configuration.host, port: configuration.port)
        do {
            var hello = ["HELLO", "3"]
            if let password = configuration.password {
                hello += ["AUTH", configuration.username ?? "default", password]
            }
            if let name = configuration.clientName { hello += ["SETNAME", name] }
            _ = try await connection.send(RESPCommand(hello))
            if let database = configuration.database {
                _ = try await connection.send(RESPCommand(["SELECT", "\(database)"]))
            }
        } catch {
            await connection.close()
            throw error
        }
        return connection
    }

    /// Connects, and after each failure waits as `backoff` says and tries again, until it
    /// succeeds or `shouldStop` says to give up (or the task is cancelled).
    /// - Parameter failed: told each failure, e.g. to log the first of an outage.
    /// - Returns: the connection, or `nil` when it gave up.
    public static func connect(
        _ configuration: Configuration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        retryingWith backoff: inout ReconnectBackoff, shouldStop: () -> Bool,
        failed: (any Error) -> Void = { _ in }, onPush: @escaping @Sendable (RESPValue) -> Void = { _ in }
    ) async -> RedisConnection? {
        while !shouldStop() && !Task.isCancelled {
            do {
                let connection = try await connect(configuration, group: group, onPush: onPush)
                backoff.reset()
                return connection
            } catch {
                failed(error)
                guard (try? await Task.sleep(for: backoff.nextDelay())) != nil else { return nil }
            }
        }
        return nil
    }

    /// Sends one command and waits for its answer.
    /// - Throws: ``RedisError``; an error reply is ``RedisError/server(_:)``.
    public func send(_ command: RESPCommand) async throws -> RESPValue {
        let value = try await answer(to: command).get()
        if let error = value.error { throw RedisError.server(error) }
        return value
    }

    /// Sends the commands at once (one write) and waits for all their answers, in order:
    /// each an answer or the error it got.
    public func pipeline(_ commands: [RESPCommand]) async -> [Result<RESPValue, RedisError>] {
        let futures = commands.map { answer(to: $0, flush: false) }
        channel.flush()
        var results: [Result<RESPValue, RedisError>] = []
        results.reserveCapacity(futures.count)
        for future in futures {
            do {
                let value = try await future.get()
                results.append(value.error.map { .failure(.server($0)) } ?? .success(value))
            } catch let error as RedisError {
                results.append(.failure(error))
            } catch {
                results.append(.failure(.connectionClosed))
            }
        }
        return results
    }

    /// Sends a command whose answers arrive as push frames, not as a reply (SUBSCRIBE,
    /// PSUBSCRIBE, UNSUBSCRIBE in RESP3): nothing waits for a reply, so the replies of the
    /// commands after it still reach their senders.
    public func sendExpectingNoReply(_ command: RESPCommand) async throws {
        let written = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush((command, EventLoopPromise<RESPValue>?.none), promise: written)
        do {
            try await written.futureResult.get()
        } catch {
            throw RedisError.connectionClosed
        }
    }

    /// Sends one command without waiting: the future completes with its answer (an error
    /// reply as ``RedisError/server(_:)``). For callers that must not suspend, such as an
    /// event loop handing a command on.
    public func sendWithoutWaiting(_ command: RESPCommand) -> EventLoopFuture<RESPValue> {
        answer(to: command).flatMapThrowing { value in
            if let error = value.error { throw RedisError.server(error) }
            return value
        }
    }

    /// Sends the commands at once (one write) without waiting: a future per command, in
    /// order, each completing as ``sendWithoutWaiting(_:)-(RESPCommand)``'s does.
    public func sendWithoutWaiting(_ commands: [RESPCommand]) -> [EventLoopFuture<RESPValue>] {
        let futures = commands.map { command in
            answer(to: command, flush: false).flatMapThrowing { value in
                if let error = value.error { throw RedisError.server(error) }
                return value
            }
        }
        channel.flush()
        return futures
    }

    /// The event loop the connection's answers complete on: a caller that goes on from an
    /// answer there saves a hop to another thread.
    public var eventLoop: any EventLoop { channel.eventLoop }

    /// Whether the connection is open.
    public var isActive: Bool { channel.isActive }

    /// Closes the connection when it ends (by either side).
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    public func close() async {
        try? await channel.close()
    }

    /// Closes the connection without waiting (from code that must not suspend).
    public func closeSoon() {
        channel.close(promise: nil)
    }

    /// The answer's future; the command times out (closing the connection) after the
    /// command timeout (``RESPChannelHandler``).
    private func answer(to command: RESPCommand, flush: Bool = true) -> EventLoopFuture<RESPValue> {
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        // A write that fails (the channel is closed) is a closed connection to the caller.
        if flush {
            channel.writeAndFlush((command, Optional(promise))).whenFailure { _ in
                promise.fail(RedisError.connectionClosed)
            }
        } else {
            channel.write((command, Optional(promise))).whenFailure { _ in promise.fail(RedisError.connectionClosed) }
        }
        return promise.futureResult
    }

    private static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}
