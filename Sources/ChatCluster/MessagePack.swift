/// A MessagePack value, as Redis's Lua `cmsgpack.pack` writes them: what the append script
/// publishes (``PublishedAppend``), and the batch of records a node writes into a log entry
/// (``LogRecord``). Only what a reader of those needs: strings (kept as bytes), arrays and
/// maps; numbers, booleans and nil are read and passed over.
enum MessagePack: Equatable {
    case bytes(ArraySlice<UInt8>)
    case array([MessagePack])
    case map([(key: MessagePack, value: MessagePack)])
    /// A number, a boolean or nil.
    case scalar

    static func == (lhs: MessagePack, rhs: MessagePack) -> Bool {
        switch (lhs, rhs) {
        case (.bytes(let left), .bytes(let right)): left.elementsEqual(right)
        case (.array(let left), .array(let right)): left == right
        case (.map(let left), .map(let right)):
            left.count == right.count && zip(left, right).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case (.scalar, .scalar): true
        default: false
        }
    }

    /// Reads values one after the other from `bytes`.
    struct Reader {
        let bytes: [UInt8]
        private(set) var index = 0
        /// How deep arrays and maps may nest (a message holds two levels).
        static let maximumDepth = 8

        init(bytes: [UInt8]) {
            self.bytes = bytes
        }

        var isAtEnd: Bool { index == bytes.endIndex }

        /// The next value; `nil` when the bytes end early or are not MessagePack this reads.
        mutating func next(depth: Int = 0) -> MessagePack? {
            guard depth <= Self.maximumDepth, let first = take(1)?.first else { return nil }
            switch first {
            case 0x00...0x7f, 0xe0...0xff, 0xc0, 0xc2, 0xc3: return .scalar
            case 0xcc, 0xd0: return skip(1)
            case 0xcd, 0xd1: return skip(2)
            case 0xca, 0xce, 0xd2: return skip(4)
            case 0xcb, 0xcf, 0xd3: return skip(8)
            case 0xa0...0xbf: return string(length: Int(first & 0x1f))
            case 0xd9, 0xc4: return length(of: 1).flatMap { string(length: $0) }
            case 0xda, 0xc5: return length(of: 2).flatMap { string(length: $0) }
            case 0xdb, 0xc6: return length(of: 4).flatMap { string(length: $0) }
            case 0x90...0x9f: return array(count: Int(first & 0x0f), depth: depth)
            case 0xdc: return length(of: 2).flatMap { array(count: $0, depth: depth) }
            case 0xdd: return length(of: 4).flatMap { array(count: $0, depth: depth) }
            case 0x80...0x8f: return map(count: Int(first & 0x0f), depth: depth)
            case 0xde: return length(of: 2).flatMap { map(count: $0, depth: depth) }
            case 0xdf: return length(of: 4).flatMap { map(count: $0, depth: depth) }
            default: return nil
            }
        }

        /// The count of the array that comes next, without its elements (read them next);
        /// `nil`, having read nothing, when no array comes next.
        mutating func arrayHeader() -> Int? {
            guard index < bytes.endIndex else { return nil }
            let start = index
            let count: Int?
            switch bytes[index] {
            case 0x90...0x9f:
                count = Int(bytes[index] & 0x0f)
                index += 1
            case 0xdc, 0xdd:
                let width = bytes[index] == 0xdc ? 2 : 4
                index += 1
                count = length(of: width)
            default: count = nil
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

        private mutating func skip(_ count: Int) -> MessagePack? {
            take(count).map { _ in .scalar }
        }

        /// A big-endian length of `width` bytes.
        private mutating func length(of width: Int) -> Int? {
            take(width)?.reduce(0) { $0 << 8 | Int($1) }
        }

        private mutating func string(length: Int) -> MessagePack? {
            take(length).map { .bytes($0) }
        }

        private mutating func array(count: Int, depth: Int) -> MessagePack? {
            // Each element takes a byte at least: a count beyond the bytes left is a lie.
            guard count <= bytes.endIndex - index else { return nil }
            var elements: [MessagePack] = []
            elements.reserveCapacity(count)
            for _ in 0..<count {
                guard let element = next(depth: depth + 1) else { return nil }
                elements.append(element)
            }
            return .array(elements)
        }

        private mutating func map(count: Int, depth: Int) -> MessagePack? {
            guard count <= (bytes.endIndex - index) / 2 else { return nil }
            var pairs: [(key: MessagePack, value: MessagePack)] = []
            for _ in 0..<count {
                guard let key = next(depth: depth + 1), let value = next(depth: depth + 1) else { return nil }
                pairs.append((key, value))
            }
            return .map(pairs)
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
