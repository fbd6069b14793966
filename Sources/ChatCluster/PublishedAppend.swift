import ChatHub
import RedisClient

/// Appends to the hub log that Redis also pushes to every node as they happen: one script
/// `XADD`s a batch of entries and `PUBLISH`es them in one message, with the id of the entry
/// before them, on ``ClusterKeys/appended``. The nodes take new entries from those pushes
/// instead of asking for them with `XREAD`: Redis wakes once per batch instead of once per
/// append and twice per node and read (a blocked read answered, the next read sent), and a
/// node wakes once per push instead of twice (BENCHMARKS.md, "Entries pushed to the nodes").
///
/// The stream stays the log: a node that connects, or finds a push that does not follow the
/// last entry it has (``EntryChain``), reads the stream from where it is.
enum PublishedAppend {
    /// KEYS: the log. ARGV: the channel, then for each entry the number of its field and
    /// value strings and those strings. Each entry is appended on its own (`pcall`): the
    /// reply has, for each, its id or the error that refused it. The message, packed by
    /// Redis's own MessagePack encoder (in C; building it in Lua cost Redis half again as
    /// much per entry): the id of the entry before the batch (`0-0` in an empty stream), the
    /// reply, and the arguments as they came.
    static let script = """
        local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
        local ids = {}
        local taken = false
        local i = 2
        while i <= #ARGV do
          local n = tonumber(ARGV[i])
          local ok, id = pcall(redis.call, 'XADD', KEYS[1], '*', unpack(ARGV, i + 1, i + n))
          ids[#ids + 1] = id
          taken = taken or ok
          i = i + 1 + n
        end
        if taken then
          redis.call('PUBLISH', ARGV[1], cmsgpack.pack(last[1] and last[1][1] or '0-0', ids, ARGV))
        end
        return ids
        """

    /// The most entries one call appends: a larger batch goes in several calls, in order
    /// (Lua's stack takes a few thousand arguments).
    static let maximumBatch = 256

    /// An entry's field-value pairs.
    typealias Fields = [(name: String, value: [UInt8])]

    /// The command that appends these entries, in order, and publishes those it took.
    static func command(entries: [Fields]) -> RESPCommand {
        let capacity = entries.reduce(0) { total, fields in
            fields.reduce(total + 16) { $0 + $1.name.utf8.count + $1.value.count + 32 }
        }
        return RESPCommand(head, capacity: capacity) { arguments in
            for fields in entries {
                arguments.append(2 * fields.count)
                for field in fields {
                    arguments.append(field.name)
                    arguments.append(field.value)
                }
            }
        }
    }

    /// What every call starts with, encoded once: a node sends one call per loop tick.
    private static let head = RESPCommand.Arguments([
        "EVAL", script, "1", ClusterKeys.log, ClusterKeys.appended,
    ])

    /// Each entry's outcome in the script's reply: its id, or the error that refused it;
    /// `nil` when the reply is not one outcome per entry.
    static func outcomes(of reply: RESPValue, entries: Int) -> [Result<StreamID, RedisError>]? {
        guard case .array(let items) = reply, items.count == entries else { return nil }
        return items.map { item in
            if let error = item.error { return .failure(.server(error)) }
            guard let id = StreamID(item) else { return .failure(.server("no entry id")) }
            return .success(id)
        }
    }

    /// Whether a call of one entry took it.
    static func tookTheOne(_ answer: Result<RESPValue, RedisError>) -> Bool {
        guard case .success(let reply) = answer, let outcome = outcomes(of: reply, entries: 1)?.first,
            case .success = outcome
        else { return false }
        return true
    }

    /// Entries pushed together, and the id of the entry before them in the log.
    struct Pushed: Sendable, Equatable {
        var previous: StreamID
        var entries: [StreamEntry]
    }

    /// The entries in a push frame of ``ClusterKeys/appended`` (`message`, channel,
    /// payload); `nil` for any other push (the subscription's confirmation) or a payload it
    /// cannot read.
    static func pushed(in value: RESPValue) -> Pushed? {
        guard case .push(let parts) = value, parts.count == 3, parts[0].string == "message",
            parts[1].string == ClusterKeys.appended, case .bulkString(let payload) = parts[2]
        else { return nil }
        return pushed(payload: payload)
    }

    /// The entries in a message's payload (the script's format); `nil` when it is not one.
    static func pushed(payload: [UInt8]) -> Pushed? {
        var reader = MessagePack.Reader(bytes: payload)
        guard case .bytes(let previousText)? = reader.next(), let previous = StreamID(token: previousText),
            case .array(let outcomes)? = reader.next(), case .array(let arguments)? = reader.next(), reader.isAtEnd
        else { return nil }
        var entries: [StreamEntry] = []
        entries.reserveCapacity(outcomes.count)
        // After the channel: each entry's count of strings, then the strings.
        var index = 1
        for outcome in outcomes {
            guard index < arguments.count, case .bytes(let countText) = arguments[index],
                let count = Int(String(decoding: countText, as: UTF8.self)), count >= 0, count % 2 == 0,
                count < arguments.count - index
            else { return nil }
            let strings = arguments[(index + 1)..<(index + 1 + count)]
            index += 1 + count
            // An entry Redis refused is not in the log.
            guard case .bytes(let idText) = outcome else { continue }
            guard let id = StreamID(token: idText) else { return nil }
            var fields = [String: [UInt8]](minimumCapacity: count / 2)
            var pair = strings.startIndex
            while pair < strings.endIndex {
                guard case .bytes(let name) = strings[pair], case .bytes(let value) = strings[pair + 1] else {
                    return nil
                }
                fields[String(decoding: name, as: UTF8.self)] = Array(value)
                pair += 2
            }
            entries.append(StreamEntry(id: id, fields: fields))
        }
        guard index == arguments.count, !entries.isEmpty else { return nil }
        return Pushed(previous: previous, entries: entries)
    }
}

extension StreamID {
    fileprivate init?(token: ArraySlice<UInt8>) {
        self.init(utf8: token)
    }
}
