import ChatHub

/// What this node appended to the hub log and has not yet read back, so that every command
/// is either applied once or refused, never both, across a lost connection to Redis.
///
/// Each append carries its node and sequence number (``entryTag(node:sequence:)``). Reading
/// it back confirms it. When the writer's connection ends, the appends still unconfirmed
/// are in doubt: Redis may or may not have taken them. After the writer reconnects, the
/// ledger notes the stream's last id at that moment; once the reader has applied up to it,
/// every in-doubt append that did not come back was never taken, and is settled as refused.
/// Nothing is guessed.
package struct AppendLedger: Sendable {
    private var nextSequence: UInt64 = 1
    private var unconfirmed: [UInt64: HubCommand] = [:]
    /// Set by a reconnect: the stream's last id then, and the first sequence number sent on
    /// the new connection.
    private var settlement: (upTo: StreamID, below: UInt64)?

    /// Appends sent and not yet read back.
    var unconfirmedCount: Int { unconfirmed.count }

    /// Numbers a command about to be appended.
    mutating func record(_ command: HubCommand) -> UInt64 {
        defer { nextSequence += 1 }
        unconfirmed[nextSequence] = command
        return nextSequence
    }

    /// The appends read back from the stream.
    mutating func confirm(_ sequence: UInt64) {
        unconfirmed[sequence] = nil
    }

    /// Redis refused the append (an error reply): it is not in the stream.
    /// - Returns: the command, unless it was settled meanwhile.
    mutating func reject(_ sequence: UInt64) -> HubCommand? {
        unconfirmed.removeValue(forKey: sequence)
    }

    /// The writer is connected again and the stream's last entry is `tail`: what was sent
    /// before now is settled once the reader has applied up to `tail`.
    mutating func reconnected(tail: StreamID) {
        settlement = (tail, nextSequence)
    }

    /// After the reader applied up to `applied`: the in-doubt appends that never came back,
    /// in the order they were sent, once the settlement point is reached; else nothing.
    mutating func settle(applied: StreamID) -> [HubCommand] {
        guard let point = settlement, applied >= point.upTo else { return [] }
        settlement = nil
        let lost = unconfirmed.keys.filter { $0 < point.below }.sorted()
        return lost.compactMap { unconfirmed.removeValue(forKey: $0) }
    }

    /// The log was lost: every append not yet read back went with it (in the order sent),
    /// and a settlement pending is moot.
    mutating func abandonAll() -> [HubCommand] {
        settlement = nil
        defer { unconfirmed = [:] }
        return unconfirmed.keys.sorted().compactMap { unconfirmed[$0] }
    }

    /// The tag an append carries: `<node>:<sequence>`.
    static func entryTag(node: NodeNumber, sequence: UInt64) -> String { "\(node):\(sequence)" }

    /// The sequence number of a tag this node wrote, else `nil`.
    static func sequence(inTag tag: [UInt8], ofNode node: NodeNumber) -> UInt64? {
        guard let colon = tag.firstIndex(of: UInt8(ascii: ":")),
            NodeNumber(String(decoding: tag[..<colon], as: UTF8.self)) == node
        else { return nil }
        return UInt64(String(decoding: tag[(colon + 1)...], as: UTF8.self))
    }
}
