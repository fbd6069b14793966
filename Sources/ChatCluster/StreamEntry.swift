import ChatHub
import RedisClient

/// One entry of the hub log as read back: its id, and the records of the appends it holds
/// (``LogRecord``).
package struct StreamEntry: Sendable, Equatable {
    var id: StreamID
    var records: [LogRecord]

    init(id: StreamID, records: [LogRecord]) {
        (self.id, self.records) = (id, records)
    }

    /// From the stream's field-value pairs: the records in ``ClusterKeys/recordsField``; or,
    /// written by an older version, one record of the entry's own fields. Records that
    /// cannot be read are one record of no field, which is skipped with an error when
    /// applied (the entry still counts in the log's position).
    init(id: StreamID, fields: [RESPValue]) {
        self.id = id
        var record = LogRecord()
        for pair in stride(from: 0, to: fields.count - 1, by: 2) {
            guard case .bulkString(let name) = fields[pair], case .bulkString(let value) = fields[pair + 1] else {
                continue
            }
            guard name.elementsEqual(ClusterKeys.recordsField.utf8) else {
                record.set(name, to: value)
                continue
            }
            var reader = MessagePack.Reader(bytes: value)
            guard let records = LogRecord.records(in: &reader), reader.isAtEnd else {
                self.records = [LogRecord()]
                return
            }
            self.records = records
            return
        }
        records = [record]
    }

    enum ReadError: Error, CustomStringConvertible {
        case unexpected(String)

        var description: String {
            switch self {
            case .unexpected(let what): "unexpected XREAD reply: \(what)"
            }
        }
    }

    /// The entries of one stream in an `XREAD` reply: a map (RESP3) or an array of
    /// [key, entries] pairs (RESP2), or null when the wait ran out.
    static func entries(ofXREAD reply: RESPValue) throws(ReadError) -> [StreamEntry] {
        let streams: [RESPValue]
        switch reply {
        case .null: return []
        case .map(let pairs): streams = pairs.map(\.value)
        case .array(let pairs):
            streams = try pairs.map { pair throws(ReadError) in
                guard case .array(let keyAndEntries) = pair, keyAndEntries.count == 2 else {
                    throw .unexpected("a stream that is not [key, entries]")
                }
                return keyAndEntries[1]
            }
        default: throw .unexpected("not a map")
        }
        guard let only = streams.first else { return [] }
        return try entries(ofRange: only)
    }

    /// The entries of an `XRANGE`/`XREVRANGE` reply (or one stream of an `XREAD` reply).
    static func entries(ofRange reply: RESPValue) throws(ReadError) -> [StreamEntry] {
        guard case .array(let items) = reply else { throw .unexpected("entries that are not an array") }
        return try items.map { item throws(ReadError) in
            guard case .array(let idAndFields) = item, idAndFields.count == 2,
                let id = StreamID(idAndFields[0])
            else { throw .unexpected("an entry that is not [id, fields]") }
            guard case .array(let fields) = idAndFields[1] else { return StreamEntry(id: id, fields: []) }
            return StreamEntry(id: id, fields: fields)
        }
    }
}

/// What `XINFO STREAM` says of the hub log that a node checks itself against.
package struct StreamInfo: Sendable {
    /// Every entry ever appended (Redis 7 counts them), trimmed or not.
    var entriesAdded: Int64
    /// The entries in it now.
    var length: Int64
    /// The oldest entry left.
    var firstID: StreamID

    /// The entries trimmed away (the log is only ever trimmed, never deleted from).
    var trimmedCount: Int64 { entriesAdded - length }

    /// Whether a node that applied up to `applied`, the `position`th entry of the log, has
    /// missed entries that were trimmed: more were trimmed than it read. Without a position
    /// (a snapshot that did not say), whether what it applied is gone and something after it.
    func missedEntries(applied: StreamID, position: Int64?) -> Bool {
        if let position { return trimmedCount > position }
        return trimmedCount > 0 && firstID > applied
    }

    /// From the reply: a map (RESP3) or a flat array of names and values (RESP2); `nil`
    /// when it is neither, or lacks the fields (Redis before 7).
    init?(_ reply: RESPValue) {
        var fields: [String: RESPValue] = [:]
        switch reply {
        case .map(let pairs):
            for pair in pairs { if let name = pair.key.string { fields[name] = pair.value } }
        case .array(let flat):
            var index = 0
            while index + 1 < flat.count {
                if let name = flat[index].string { fields[name] = flat[index + 1] }
                index += 2
            }
        default: return nil
        }
        guard case .integer(let added) = fields["entries-added"], case .integer(let length) = fields["length"],
            let first = fields["recorded-first-entry-id"]?.string.flatMap(StreamID.init)
        else { return nil }
        entriesAdded = added
        self.length = length
        firstID = first
    }
}

extension StreamID {
    /// An entry's id as Redis answers it: a bulk string, or a simple one from a script.
    init?(_ value: RESPValue) {
        switch value {
        case .bulkString(let bytes): self.init(utf8: bytes)
        case .simpleString(let text): self.init(text)
        default: return nil
        }
    }
}
