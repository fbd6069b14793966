import NIOCore

/// The handlers behind a listener's own: what turns a connection's traffic into a session.
struct SessionHandlers: Sendable {
    let services: ServerServices
    /// The connection's socket (the server accepted it: ``ConnectionAcceptor``).
    let socket: CInt

    /// A byte stream (TCP, TLS): split into lines with the line limit, then the session.
    /// - Parameter writingToSocket: whether the connection's lines may be written straight
    ///   to its socket, bypassing the pipeline (``LocalSession/socket``): only when no
    ///   handler changes outbound bytes (plain TCP, not TLS).
    func addLineFramed(to channel: any Channel, writingToSocket: Bool = false) throws {
        try channel.pipeline.syncOperations.addHandler(
            LineFrameHandler(maximumLineBytes: services.configuration.maxLineBytes))
        try channel.pipeline.syncOperations.addHandler(
            ConnectionHandler(services: services, socket: writingToSocket ? socket : -1))
    }

    /// A transport that already yields ``InboundLine``s (the WebSocket): the session alone.
    func addSession(to channel: any Channel) throws {
        try channel.pipeline.syncOperations.addHandler(ConnectionHandler(services: services))
    }
}
