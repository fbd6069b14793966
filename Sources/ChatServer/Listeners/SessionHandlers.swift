import NIOCore

/// The handlers behind a listener's own: what turns a connection's traffic into a session.
struct SessionHandlers: Sendable {
    let services: ServerServices

    /// A byte stream (TCP, TLS): split into lines with the line limit, then the session.
    func addLineFramed(to channel: any Channel) throws {
        let decoder = LineFrameDecoder(maximumLineBytes: services.configuration.maxLineBytes)
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder))
        try addSession(to: channel)
    }

    /// A transport that already yields ``InboundLine``s (the WebSocket): the session alone.
    func addSession(to channel: any Channel) throws {
        try channel.pipeline.syncOperations.addHandler(ConnectionHandler(services: services))
    }
}
