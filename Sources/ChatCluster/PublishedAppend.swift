import ChatHub
import RedisClient

/// Appends to the hub log that Redis also pushes to every node as they happen: one script
/// `XADD`s a batch of records (``LogRecord``) as one log entry and `PUBLISH`es it, with the
/// id of the entry before it, on ``ClusterKeys/appended``. The nodes take new entries from
/// those pushes instead of asking for them with `XREAD`: Redis wakes once per batch instead
/// of once per append and twice per node and read (a blocked read answered, the next read
/// sent), and a node wakes once per push instead of twice (BENCHMARKS.md, "Entries pushed to
/// the nodes").
///
/// The stream stays the log: a node that connects, or finds a push that does not follow the
/// last entry it has (``EntryChain``), reads the stream from where it is.
enum PublishedAppend {
    /// KEYS: the log. ARGV: the channel, the batch of records (``LogRecord/batch(_:)``).
    /// Appends the batch as one entry; the reply is its id, or the error that refused it
    /// (then nothing was appended). The message: the id of the entry before (`0-0` in an
    /// empty stream) and the new entry's, packed by Redis's own MessagePack encoder, then
    /// the batch as it came.
    static let script = """
        local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
        local id = redis.call('XADD', KEYS[1], '*', 'r', ARGV[2])
        redis.call('PUBLISH', ARGV[1], cmsgpack.pack(last[1] and last[1][1] or '0-0', id) .. ARGV[2])
        return id
        """

    /// The most records one call appends: a larger batch goes in several calls, in order.
    /// A read of the fewest entries a node asks for (``ReadBatch/minimum``) stays well within
    /// Redis's output buffer limits.
    static let maximumBatch = 256

    /// A record's field-value pairs.
    typealias Fields = [(name: String, value: [UInt8])]

    /// The command that appends these records, in order, as one entry, and publishes it.
    static func command(records: [Fields]) -> RESPCommand {
        let batch = LogRecord.batch(records)
        return RESPCommand(head, capacity: batch.count + 16) { $0.append(batch) }
    }

    /// What every call starts with, encoded once: a node sends one call per loop tick.
    private static let head = RESPCommand.Arguments([
        "EVAL", script, "1", ClusterKeys.log, ClusterKeys.appended,
    ])

    /// Each record's outcome in the script's reply, alike for all of them (they are one
    /// entry): the entry's id; `nil` when the reply is not one.
    static func outcomes(of reply: RESPValue, records: Int) -> [Result<StreamID, RedisError>]? {
        guard let id = StreamID(reply) else { return nil }
        return Array(repeating: .success(id), count: records)
    }

    /// Whether a call of one record took it.
    static func tookTheOne(_ answer: Result<RESPValue, RedisError>) -> Bool {
        guard case .success(let reply) = answer, let outcome = outcomes(of: reply, records: 1)?.first,
            case .success = outcome
        else { return false }
        return true
    }

    /// An entry pushed, and the id of the entry before it in the log.
    struct Pushed: Sendable, Equatable {
        var previous: StreamID
        var entries: [StreamEntry]
    }

    /// The entry in a push frame of ``ClusterKeys/appended`` (`message`, channel, payload);
    /// `nil` for any other push (the subscription's confirmation) or a payload it cannot read.
    static func pushed(in value: RESPValue) -> Pushed? {
        guard case .push(let parts) = value, parts.count == 3, parts[0].string == "message",
            parts[1].string == ClusterKeys.appended, case .bulkString(let payload) = parts[2]
        else { return nil }
        return pushed(payload: payload)
    }

    /// The entry in a message's payload (the script's format); `nil` when it is not one.
    static func pushed(payload: [UInt8]) -> Pushed? {
        var reader = MessagePack.Reader(bytes: payload)
        guard let previousText = reader.string(), let previous = StreamID(utf8: previousText),
            let idText = reader.string(), let id = StreamID(utf8: idText), id > previous,
            let records = LogRecord.records(in: &reader), reader.isAtEnd
        else { return nil }
        return Pushed(previous: previous, entries: [StreamEntry(id: id, records: records)])
    }
}
