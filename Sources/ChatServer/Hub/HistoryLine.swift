import NIOCore

/// A line kept in a room's history, with its sender's lower-cased name, so that a replay
/// leaves out the senders the joiner ignores.
struct HistoryLine: Sendable {
    let line: ByteBuffer
    let sender: String
}
