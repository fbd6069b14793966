import ChatHub

/// The inbound user event that tells the connection handler who the client is: fired by a
/// listener's last handler once the address is known (from the socket, or later from a
/// PROXY protocol header), before anything else reaches the handler. Admission waits for it.
struct ClientAddressResolved: Sendable {
    let address: ClientAddress
}
