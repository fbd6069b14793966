/// A FIFO of lines; removing from the front is O(1) amortised.
struct LineQueue {
    private var lines: [String] = []
    private var head = 0

    var count: Int { lines.count - head }
    var isEmpty: Bool { count == 0 }
    var first: String? { head < lines.count ? lines[head] : nil }

    mutating func append(_ line: String) { lines.append(line) }

    mutating func removeFirst() {
        head += 1
        if head == lines.count {
            lines.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64 && head * 2 >= lines.count {
            lines.removeFirst(head)
            head = 0
        }
    }

    mutating func removeAll() {
        lines.removeAll()
        head = 0
    }
}
