import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// What the client reacts to, from any source, in order.
enum ClientEvent: Sendable {
    /// A line from the server (without its line end).
    case line(String)
    /// The server closed the connection, or it broke.
    case disconnected(reason: String?)
    /// The connection cannot work as the client was started (a TLS port without `--tls`, a
    /// certificate it does not trust): trying again would not help.
    case refused(String)
    /// The server closed the connection before it sent a line. A chat server greets first,
    /// so this is no chat server (a TLS port?), or a proxy with no live server behind it.
    case closedUnheard

    /// What ``closedUnheard`` means to a user who did not expect it.
    static let closedUnheardReason =
        "the server closed the connection without a word (if this is its TLS port, use --tls)"
    /// Bytes typed (or piped) on standard input.
    case input([UInt8])
    /// Standard input ended.
    case inputClosed
    /// The terminal changed size.
    case resized
    /// Time to connect again.
    case retry
}

/// One connection to the server: lines in (as ``ClientEvent``s), lines out.
struct ServerConnection: Sendable {
    let channel: any Channel

    static func connect(
        _ options: ClientOptions, group: any EventLoopGroup, events: AsyncStream<ClientEvent>.Continuation
    ) async throws -> ServerConnection {
        let sslContext: NIOSSLContext? = try options.tls.map { tls in
            var configuration = TLSConfiguration.makeClientConfiguration()
            if let roots = tls.trustRoots { configuration.trustRoots = .certificates(roots) }
            if !tls.verify { configuration.certificateVerification = .none }
            return try NIOSSLContext(configuration: configuration)
        }
        let host = options.endpoint.host
        // SNI and the name check take a host name, not an address.
        let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: sslContext, serverHostname: isAddress ? nil : host))
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        LineSplitter(events: events, host: host, overTLS: sslContext != nil))
                }
            }
            .connect(host: host, port: options.endpoint.port)
            .get()
        return ServerConnection(channel: channel)
    }

    func send(_ line: String) {
        channel.writeAndFlush(ByteBuffer(string: line + "\n"), promise: nil)
    }

    /// Stops sending (a script's input ended); the server then closes.
    func finishSending() {
        channel.close(mode: .output, promise: nil)
    }

    func close() {
        channel.close(promise: nil)
    }
}

/// Cuts the server's bytes into lines (`\n`, with or without `\r`).
private final class LineSplitter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let events: AsyncStream<ClientEvent>.Continuation
    private let host: String
    private let overTLS: Bool
    private var partial: [UInt8] = []
    private var failure: String?
    private var refusal: String?
    private var heardAnything = false

    init(events: AsyncStream<ClientEvent>.Continuation, host: String, overTLS: Bool) {
        self.events = events
        self.host = host
        self.overTLS = overTLS
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if !heardAnything, !overTLS, Self.isTLSRecord(buffer.readableBytesView) {
            // The server speaks TLS here; what it sent is an alert, not text to show.
            refusal = "the server at this port speaks TLS: use --tls"
            context.close(promise: nil)
            return
        }
        heardAnything = true
        for byte in buffer.readableBytesView {
            if byte == UInt8(ascii: "\n") {
                if partial.last == UInt8(ascii: "\r") { partial.removeLast() }
                events.yield(.line(String(decoding: partial, as: UTF8.self)))
                partial.removeAll(keepingCapacity: true)
            } else {
                partial.append(byte)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !partial.isEmpty { events.yield(.line(String(decoding: partial, as: UTF8.self))) }
        if let refusal {
            events.yield(.refused(refusal))
        } else if !heardAnything, failure == nil, !overTLS {
            events.yield(.closedUnheard)
        } else {
            events.yield(.disconnected(reason: failure))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if refusal == nil, failure == nil {
            if let untrusted = ConnectionFailure.untrustedCertificate(error, host: host) {
                refusal = untrusted
            } else {
                failure = ConnectionFailure.describe(error)
            }
        }
        context.close(promise: nil)
    }

    /// A TLS record's first bytes: an alert (21) or handshake (22) of version 3.x.
    private static func isTLSRecord(_ bytes: ByteBufferView) -> Bool {
        guard bytes.count >= 2, let first = bytes.first else { return false }
        return (first == 21 || first == 22) && bytes[bytes.index(after: bytes.startIndex)] == 3
    }
}

/// Reads standard input on a thread of its own (a blocking read), as ``ClientEvent``s.
enum StandardInput {
    static func start(_ events: AsyncStream<ClientEvent>.Continuation) {
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = read(0, &buffer, buffer.count)
                if count < 0, errno == EINTR { continue }
                guard count > 0 else {
                    events.yield(.inputClosed)
                    return
                }
                events.yield(.input(Array(buffer[0..<count])))
            }
        }
        thread.start()
    }
}
