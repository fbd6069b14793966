/// One receiver's view of the senders' sequence numbers: what arrived in order, what was
/// skipped (lost, until it turns up), what turned up late and what arrived twice.
struct SequenceCheck {
    enum Outcome: Equatable {
        case inOrder
        /// This many earlier sequences were skipped.
        case skipped(Int)
        /// A skipped sequence arrived after all.
        case late
        /// A sequence that had already arrived.
        case duplicate
    }

    /// The next sequence expected from each sender.
    private var expected: [Int]
    /// Per sender, the sequences skipped so far; empty unless something went wrong, so it
    /// costs nothing in a clean run.
    private var gaps: [Int: [Range<Int>]] = [:]

    init(senders: Int) {
        expected = Array(repeating: 0, count: senders)
    }

    var senders: Int { expected.count }

    /// Lines past the last one received from each sender, given how many each sent (the
    /// skipped ones are counted as lost when they are skipped).
    func missing(sent: [Int]) -> Int {
        zip(expected, sent).reduce(0) { $0 + max(0, $1.1 - $1.0) }
    }

    mutating func receive(sender: Int, sequence: Int) -> Outcome {
        let want = expected[sender]
        if sequence == want {
            expected[sender] = want + 1
            return .inOrder
        }
        if sequence > want {
            gaps[sender, default: []].append(want..<sequence)
            expected[sender] = sequence + 1
            return .skipped(sequence - want)
        }
        guard var ranges = gaps[sender], let index = ranges.firstIndex(where: { $0.contains(sequence) }) else {
            return .duplicate
        }
        let range = ranges.remove(at: index)
        if range.lowerBound < sequence { ranges.append(range.lowerBound..<sequence) }
        if sequence + 1 < range.upperBound { ranges.append((sequence + 1)..<range.upperBound) }
        gaps[sender] = ranges.isEmpty ? nil : ranges
        return .late
    }
}
