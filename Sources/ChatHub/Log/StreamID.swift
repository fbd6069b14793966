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
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let milliseconds = Int64(parts[0]), let sequence = Int64(parts[1]) else { return nil }
        self.init(milliseconds: milliseconds, sequence: sequence)
    }

    package var description: String { "\(milliseconds)-\(sequence)" }

    package static func < (lhs: StreamID, rhs: StreamID) -> Bool {
        (lhs.milliseconds, lhs.sequence) < (rhs.milliseconds, rhs.sequence)
    }
}
