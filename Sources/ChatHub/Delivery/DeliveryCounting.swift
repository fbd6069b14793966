/// Where a shard counts what it delivered, once per batch (the server's metrics; the hub
/// knows no metrics backend).
package protocol DeliveryCounting: Sendable {
    func delivered(roomLines: Int, privateMessages: Int)
}
