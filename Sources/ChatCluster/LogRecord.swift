/// What one append wrote to the hub log: a command and its tag, or a heartbeat.
///
/// A log entry (one stream entry) holds the records of one call of the append script, in
/// the order they were made: a loop tick's appends of one node (``AppendQueue``). Redis
/// appends one stream entry per call instead of one per record: each `XADD` is most of what
/// the script costs it (BENCHMARKS.md, "The log's unit is a call"). The records go in one
/// field, ``ClusterKeys/recordsField``, as a MessagePack array of arrays, each holding its
/// fields' names and values in turn. An entry written by an older version, with the fields
/// of one record as its own, reads as that one record.
package struct LogRecord: Sendable, Equatable {
    /// The encoded command (``ClusterKeys/commandField``).
    var command: [UInt8]?
    /// Which node's which append it is (``ClusterKeys/tagField``, ``AppendLedger``).
    var tag: [UInt8]?
    /// A heartbeat's node number (``ClusterKeys/beatField``).
    var beat: [UInt8]?

    init(command: [UInt8]? = nil, tag: [UInt8]? = nil, beat: [UInt8]? = nil) {
        (self.command, self.tag, self.beat) = (command, tag, beat)
    }

    /// Takes a field's value; a field this version does not know is passed over (a record
    /// of no field it knows is skipped, with an error in the log, when applied).
    mutating func set(_ name: some Collection<UInt8>, to value: some Collection<UInt8>) {
        if name.elementsEqual(ClusterKeys.commandField.utf8) {
            command = Array(value)
        } else if name.elementsEqual(ClusterKeys.tagField.utf8) {
            tag = Array(value)
        } else if name.elementsEqual(ClusterKeys.beatField.utf8) {
            beat = Array(value)
        }
    }

    /// The value of ``ClusterKeys/recordsField`` for these records' fields.
    static func batch(_ records: [PublishedAppend.Fields]) -> [UInt8] {
        let capacity = records.reduce(5) { total, fields in
            fields.reduce(total + 5) { $0 + $1.name.utf8.count + $1.value.count + 10 }
        }
        var writer = MessagePack.Writer(capacity: capacity)
        writer.appendArrayHeader(count: records.count)
        for fields in records {
            writer.appendArrayHeader(count: 2 * fields.count)
            for field in fields {
                writer.append(binary: field.name.utf8)
                writer.append(binary: field.value)
            }
        }
        return writer.bytes
    }

    /// The records of a batch, read from where `reader` is; `nil` when what comes is not one.
    static func records(in reader: inout MessagePack.Reader) -> [LogRecord]? {
        guard let count = reader.arrayHeader() else { return nil }
        var records: [LogRecord] = []
        records.reserveCapacity(count)
        for _ in 0..<count {
            guard let strings = reader.arrayHeader(), strings % 2 == 0 else { return nil }
            var record = LogRecord()
            for _ in 0..<strings / 2 {
                guard let name = reader.string(), let value = reader.string() else { return nil }
                record.set(name, to: value)
            }
            records.append(record)
        }
        return records
    }
}
