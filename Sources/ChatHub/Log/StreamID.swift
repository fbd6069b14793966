/// A position in the hub log, `1700000000000-3`: the milliseconds the entry was stamped
/// with and a sequence number; entries are ordered by both. It is a Redis stream entry's
/// id, and what a snapshot records as the last entry it includes.
package struct StreamID: Comparable, Hashable, Sendable, CustomStringConvertible {
    package var milliseconds: Int64
    package var sequence: Int64

    package static let zero = StreamID(milliseconds: 0, sequence: 0)

    package init(milliseconds: Int64, sequence: Int64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    package init?(_ text: String) {
        self.init(utf8: text.utf8)
    }

    /// Reads `milliseconds-sequence` from the bytes Redis sent, without making a `String` of
    /// them first: a node reads an id for every entry pushed to it and every outcome of its
    /// appends. Both parts are decimal digits, neither empty nor past `Int64.max`.
    package init?<Bytes: Collection<UInt8>>(utf8 bytes: Bytes) {
        // Generic code called from another module runs unspecialized, a witness call per
        // byte (5 % of a node's user time in a busy cluster): the digits are read from
        // contiguous storage instead, which every caller has.
        guard let parsed = bytes.withContiguousStorageIfAvailable(Self.parse) ?? Self.parse(Array(bytes)) else {
            return nil
        }
        self = parsed
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> StreamID? {
        var parts: (milliseconds: Int64, sequence: Int64) = (0, 0)
        var digits = 0
        var inSequence = false
        for byte in bytes {
            if byte == UInt8(ascii: "-"), !inSequence, digits > 0 {
                inSequence = true
                digits = 0
                continue
            }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let part = inSequence ? parts.sequence : parts.milliseconds
            let (shifted, overflowed) = part.multipliedReportingOverflow(by: 10)
            let (next, overflowedAgain) = shifted.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !overflowed, !overflowedAgain else { return nil }
            if inSequence { parts.sequence = next } else { parts.milliseconds = next }
            digits += 1
        }
        guard inSequence, digits > 0 else { return nil }
        return StreamID(milliseconds: parts.milliseconds, sequence: parts.sequence)
    }

    private static func parse(_ bytes: [UInt8]) -> StreamID? {
        bytes.withUnsafeBufferPointer(parse)
    }

    package var description: String { "\(milliseconds)-\(sequence)" }

    package static func < (lhs: StreamID, rhs: StreamID) -> Bool {
        (lhs.milliseconds, lhs.sequence) < (rhs.milliseconds, rhs.sequence)
    }
}
