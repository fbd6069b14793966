/// The part of MessagePack the hub log's pushes and records are written in: arrays and
/// strings. Redis's Lua `cmsgpack.pack` writes the ids in front of a push
/// (``PublishedAppend``); a node writes the batch of records of a log entry (``LogRecord``).
/// Read as it comes, without building a tree of values: the reader asks for what it expects
/// next, and anything else is refused, never misread or trapped on.
enum MessagePack {
    /// Reads arrays' headers and strings one after the other from `bytes`.
    struct Reader {
        let bytes: [UInt8]
        private(set) var index = 0

        init(bytes: [UInt8]) {
            self.bytes = bytes
        }

        var isAtEnd: Bool { index == bytes.endIndex }

        /// The count of the array that comes next, without its elements (read them next);
        /// `nil`, having read nothing, when no array comes next.
        mutating func arrayHeader() -> Int? {
            let start = index
            guard let first = take(1)?.first else { return nil }
            let count: Int? =
                switch first {
                case 0x90...0x9f: Int(first & 0x0f)
                case 0xdc: length(of: 2)
                case 0xdd: length(of: 4)
                default: nil
                }
            // Each element takes a byte at least: a count beyond the bytes left is a lie.
            guard let count, count <= bytes.endIndex - index else {
                index = start
                return nil
            }
            return count
        }

        /// The string (or binary) that comes next; `nil`, having read nothing, when none does.
        mutating func string() -> ArraySlice<UInt8>? {
            let start = index
            guard let first = take(1)?.first else { return nil }
            let length: Int? =
                switch first {
                case 0xa0...0xbf: Int(first & 0x1f)
                case 0xd9, 0xc4: self.length(of: 1)
                case 0xda, 0xc5: self.length(of: 2)
                case 0xdb, 0xc6: self.length(of: 4)
                default: nil
                }
            guard let length, let string = take(length) else {
                index = start
                return nil
            }
            return string
        }

        private mutating func take(_ count: Int) -> ArraySlice<UInt8>? {
            guard count >= 0, count <= bytes.endIndex - index else { return nil }
            defer { index += count }
            return bytes[index..<index + count]
        }

        /// A big-endian length of `width` bytes.
        private mutating func length(of width: Int) -> Int? {
            take(width)?.reduce(0) { $0 << 8 | Int($1) }
        }
    }

    /// Writes arrays and binary strings: a node's batch of records.
    struct Writer {
        private(set) var bytes: [UInt8] = []

        init(capacity: Int) {
            bytes.reserveCapacity(capacity)
        }

        mutating func appendArrayHeader(count: Int) {
            switch count {
            case ..<16: bytes.append(0x90 | UInt8(count))
            case ..<0x1_0000: appendLength(count, after: 0xdc, width: 2)
            default: appendLength(count, after: 0xdd, width: 4)
            }
        }

        mutating func append(binary: some Collection<UInt8>) {
            switch binary.count {
            case ..<0x100: appendLength(binary.count, after: 0xc4, width: 1)
            case ..<0x1_0000: appendLength(binary.count, after: 0xc5, width: 2)
            default: appendLength(binary.count, after: 0xc6, width: 4)
            }
            bytes.append(contentsOf: binary)
        }

        /// A type byte, then `count` big-endian in `width` bytes.
        private mutating func appendLength(_ count: Int, after type: UInt8, width: Int) {
            bytes.append(type)
            for shift in stride(from: 8 * (width - 1), through: 0, by: -8) {
                bytes.append(UInt8(truncatingIfNeeded: count >> shift))
            }
        }
    }
}
