import ChatHub
import Logging
import NIOCore
import NIOTLS

/// Behind a TLS listener's `NIOSSLServerHandler`: holds the client's address back until the
/// handshake is done, so nothing is admitted (and no slot taken) for a client that never
/// finishes it, and closes the connection when the handshake takes longer than
/// `TLS_HANDSHAKE_TIMEOUT_SECONDS` or fails (a plaintext client, a bad hello). Neither
/// disturbs anyone else.
final class TLSHandshakeGate: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let timeout: TimeAmount
    private let logger: Logger
    private let metrics: ChatMetrics
    private var handshakeDone = false
    /// Counted once: a failed handshake may report more than one error.
    private var refused = false
    private var heldAddress: ClientAddressResolved?
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount, logger: Logger, metrics: ChatMetrics) {
        self.timeout = timeout
        self.logger = logger
        self.metrics = metrics
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startDeadline(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        startDeadline(context: context)
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let resolved = event as? ClientAddressResolved {
            guard handshakeDone else {
                heldAddress = resolved
                return
            }
            return context.fireUserInboundEventTriggered(event)
        }
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls {
            handshakeDone = true
            deadline?.cancel()
            deadline = nil
            context.fireUserInboundEventTriggered(event)
            if let held = heldAddress {
                heldAddress = nil
                context.fireUserInboundEventTriggered(held)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !handshakeDone else { return context.fireErrorCaught(error) }
        logger.debug("TLS handshake failed", metadata: ["error": "\(error)", "peer": "\(peer(context))"])
        refuse(context: context)
    }

    private func startDeadline(context: ChannelHandlerContext) {
        guard deadline == nil, !handshakeDone else { return }
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            self.logger.info(
                "TLS handshake not finished within TLS_HANDSHAKE_TIMEOUT_SECONDS; closing",
                metadata: ["peer": "\(self.peer(context))"])
            self.refuse(context: context)
        }
    }

    private func refuse(context: ChannelHandlerContext) {
        if !refused {
            refused = true
            metrics.refused(.tlsHandshake)
        }
        context.close(promise: nil)
    }

    private func peer(_ context: ChannelHandlerContext) -> String {
        context.channel.remoteAddress?.ipAddress ?? "?"
    }
}

@available(*, unavailable)
extension TLSHandshakeGate: Sendable {}
