import ChatHub
import NIOCore

/// A plain listener's address step: the client is the socket's peer. Fires
/// ``ClientAddressResolved`` when the connection becomes active, then leaves the pipeline.
/// (A PROXY protocol handler takes this step's place behind a load balancer.)
final class SocketPeerAddressHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        guard let remote = context.channel.remoteAddress, let address = ClientAddress(remote) else {
            // Not an IP connection (or already gone): nobody to admit.
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(ClientAddressResolved(address: address))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

@available(*, unavailable)
extension SocketPeerAddressHandler: Sendable {}
