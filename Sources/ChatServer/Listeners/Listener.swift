import Logging
import NIOCore
import NIOSSL

/// How connections come in: where to listen, and the handlers that carry a connection's
/// bytes to its session (``SessionHandlers``: line framing, then the connection handler).
/// The server runs any number of listeners on one hub.
///
/// A listener's handlers must fire ``ClientAddressResolved`` once the client's address is
/// known (``SocketPeerAddressHandler`` does it from the socket); nothing is admitted before.
public struct Listener: Sendable {
    /// A short name for logs and metrics (`tcp`).
    public let name: String
    public let host: String
    public let port: Int
    /// Sets up a new connection's pipeline (on its event loop): this listener's handlers,
    /// and the session's, now or (the web listener) once the connection carries lines.
    let addHandlers: @Sendable (any Channel, SessionHandlers) throws -> Void

    init(
        name: String, host: String, port: Int,
        addHandlers: @escaping @Sendable (any Channel, SessionHandlers) throws -> Void
    ) {
        self.name = name
        self.host = host
        self.port = port
        self.addHandlers = addHandlers
    }

    /// Plain TCP. The client is the socket's peer, or, with `proxyProtocol`, the client
    /// named by the PROXY protocol header a trusted proxy sends first.
    static func plainTCP(
        host: String, port: Int, proxyProtocol: ProxyProtocolSettings?, logger: Logger, metrics: ChatMetrics
    ) -> Listener {
        Listener(name: "tcp", host: host, port: port) { channel, session in
            try channel.pipeline.syncOperations.addHandler(addressStep(proxyProtocol, logger: logger, metrics: metrics))
            // The address step only reads (a PROXY header is read and the step removed), so
            // the session's lines may go straight to the socket.
            try session.addLineFramed(to: channel, writingToSocket: true)
        }
    }

    /// TLS: the listener's address step, then TLS (``addTLS(_:to:logger:metrics:)``).
    static func tls(
        host: String, port: Int, store: TLSContextStore, proxyProtocol: ProxyProtocolSettings?, logger: Logger,
        metrics: ChatMetrics
    ) -> Listener {
        Listener(name: "tls", host: host, port: port) { channel, session in
            try channel.pipeline.syncOperations.addHandler(addressStep(proxyProtocol, logger: logger, metrics: metrics))
            try addTLS(store, to: channel, logger: logger, metrics: metrics)
            try session.addLineFramed(to: channel)
        }
    }

    /// The TLS server handler with the process's current context, then the gate that
    /// admits nobody before the handshake is done.
    static func addTLS(_ store: TLSContextStore, to channel: any Channel, logger: Logger, metrics: ChatMetrics) throws {
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(NIOSSLServerHandler(context: store.context))
        try pipeline.addHandler(
            TLSHandshakeGate(timeout: TimeAmount(store.settings.handshakeTimeout), logger: logger, metrics: metrics))
    }

    /// How a listener learns the client's address.
    static func addressStep(
        _ proxyProtocol: ProxyProtocolSettings?, logger: Logger, metrics: ChatMetrics
    ) -> any ChannelHandler {
        guard let proxyProtocol else { return SocketPeerAddressHandler() }
        return ProxyProtocolHandler(
            settings: .init(
                trustedProxies: proxyProtocol.trustedProxies, timeout: TimeAmount(proxyProtocol.headerTimeout)),
            logger: logger, metrics: metrics)
    }
}
