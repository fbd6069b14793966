import NIOCore

/// A line kept in a room's history, with its sender's lower-cased name, so that a replay
/// leaves out the senders the joiner ignores.
package struct HistoryLine: Sendable {
    let line: ByteBuffer
    var sender: String
}

/// In a snapshot, the line is its text.
extension HistoryLine: Codable {
    private enum CodingKeys: String, CodingKey { case line, sender }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.line = ByteBuffer(string: try container.decode(String.self, forKey: .line))
        self.sender = try container.decode(String.self, forKey: .sender)
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(String(buffer: line), forKey: .line)
        try container.encode(sender, forKey: .sender)
    }
}
