import Logging
import NIOCore
import NIOSSL

/// How connections come in: where to listen, and the handlers that go in front of the
/// common pipeline (framing, then the connection handler). The server runs any number of
/// listeners on one hub.
///
/// A listener's handlers must end by firing ``ClientAddressResolved`` once the client's
/// address is known (``SocketPeerAddressHandler`` does it from the socket); nothing is
/// admitted before.
public struct Listener: Sendable {
    /// A short name for logs and metrics (`tcp`).
    public let name: String
    public let host: String
    public let port: Int
    /// Adds this listener's handlers to a new connection's pipeline (on its event loop).
    let addHandlers: @Sendable (any Channel) throws -> Void

    init(name: String, host: String, port: Int, addHandlers: @escaping @Sendable (any Channel) throws -> Void) {
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
        Listener(name: "tcp", host: host, port: port) { channel in
            try channel.pipeline.syncOperations.addHandler(addressStep(proxyProtocol, logger: logger, metrics: metrics))
        }
    }

    /// TLS: the listener's address step, then the TLS server handler with the process's
    /// current context, then the gate that admits nobody before the handshake is done.
    static func tls(
        host: String, port: Int, store: TLSContextStore, proxyProtocol: ProxyProtocolSettings?, logger: Logger,
        metrics: ChatMetrics
    ) -> Listener {
        let timeout = TimeAmount(store.settings.handshakeTimeout)
        return Listener(name: "tls", host: host, port: port) { channel in
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(addressStep(proxyProtocol, logger: logger, metrics: metrics))
            try pipeline.addHandler(NIOSSLServerHandler(context: store.context))
            try pipeline.addHandler(TLSHandshakeGate(timeout: timeout, logger: logger, metrics: metrics))
        }
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
