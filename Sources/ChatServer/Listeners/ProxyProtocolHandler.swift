import ChatCore
import ChatHub
import Logging
import NIOCore

/// A listener's address step behind a load balancer: the connection must come from a
/// trusted proxy and begin with a PROXY protocol header (version 1 or 2) within the
/// deadline; the header's client is then the client everywhere (limits, bans, logs).
///
/// Fires ``ClientAddressResolved``, passes on whatever followed the header in the same
/// read, and leaves the pipeline. A connection from an untrusted address, or without a
/// valid header in time, is closed without a word (there is no safe channel to send one
/// on); a version 2 `LOCAL` connection (a health check) is closed before it counts as a
/// client.
final class ProxyProtocolHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    struct Settings: Sendable {
        var trustedProxies: [IPNetwork]
        var timeout: TimeAmount
    }

    private let settings: Settings
    private let logger: Logger
    private let metrics: ChatMetrics
    private var received: ByteBuffer?
    private var deadline: Scheduled<Void>?
    private var resolved = false

    init(settings: Settings, logger: Logger, metrics: ChatMetrics) {
        self.settings = settings
        self.logger = logger
        self.metrics = metrics
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        guard let peer = context.channel.remoteAddress?.ipAddress.flatMap({ IPAddress($0) }),
            settings.trustedProxies.contains(where: { $0.contains(peer) })
        else {
            refuse("Connection from an address not in TRUSTED_PROXIES", .untrustedProxy, context: context)
            return
        }
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: settings.timeout) {
            self.refuse("No PROXY protocol header within PROXY_HEADER_TIMEOUT_SECONDS", .proxyHeader, context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !resolved else { return context.fireChannelRead(data) }
        var bytes = unwrapInboundIn(data)
        if received == nil {
            received = bytes
        } else {
            received!.writeBuffer(&bytes)
        }
        guard let buffer = received else { return }
        switch ProxyHeader.parse(buffer.readableBytesView) {
        case .incomplete:
            return
        case .invalid(let reason):
            refuse("Invalid PROXY protocol header: \(reason)", .proxyHeader, context: context)
        case .complete(.local, _):
            refuse("PROXY protocol LOCAL connection (a health check): closed", nil, context: context, level: .debug)
        case .complete(let header, let length):
            let client: ClientAddress?
            if case .proxied(let source, _) = header {
                client = ClientAddress(source)
            } else {
                client = context.channel.remoteAddress.flatMap(ClientAddress.init)
            }
            guard let client else {
                return refuse("PROXY header names no usable client", .proxyHeader, context: context)
            }
            resolved = true
            deadline?.cancel()
            deadline = nil
            received = nil
            context.fireUserInboundEventTriggered(ClientAddressResolved(address: client))
            var rest = buffer
            rest.moveReaderIndex(forwardBy: length)
            if rest.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(rest)) }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }

    /// - Parameter refusal: what the metrics count it as; `nil` for a health check, which is
    ///   not a client.
    private func refuse(
        _ reason: String, _ refusal: ConnectionRefusal?, context: ChannelHandlerContext, level: Logger.Level = .info
    ) {
        if let refusal { metrics.refused(refusal) }
        deadline?.cancel()
        deadline = nil
        received = nil
        var logger = self.logger
        if let peer = context.channel.remoteAddress?.ipAddress { logger[metadataKey: "peer"] = "\(peer)" }
        logger.log(level: level, "\(reason)")
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension ProxyProtocolHandler: Sendable {}
