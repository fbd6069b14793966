/// Everyone online, by session id: on every node of a cluster, every user of the whole chat.
///
/// A dictionary of members keeps them in its hash table, which is between 3/8 and 3/4 full:
/// at 100 000 users (just past 98 304, three quarters of 2^17) it had 262 144 slots of a
/// `Member` each, about 380 bytes per user. Here the members are in one dense array and the
/// table maps an id to its place (16 bytes a slot); a removal moves the last member into the
/// gap. The order is that of the operations, so it is the same on every node.
package struct SessionTable: Sendable, Sequence {
    private var members: [Member] = []
    /// The id of each member, in the same places.
    private var ids: [SessionID] = []
    private var places: [SessionID: Int] = [:]

    package init() {}

    package var count: Int { members.count }
    package var isEmpty: Bool { members.isEmpty }
    /// The members, in no meaningful order.
    package var values: [Member] { members }
    package var keys: [SessionID] { ids }

    package subscript(id: SessionID) -> Member? {
        get { places[id].map { members[$0] } }
        set {
            if let newValue {
                if let place = places[id] {
                    members[place] = newValue
                } else {
                    places[id] = members.count
                    members.append(newValue)
                    ids.append(id)
                }
            } else if let place = places.removeValue(forKey: id) {
                let last = members.count - 1
                if place != last {
                    members[place] = members[last]
                    ids[place] = ids[last]
                    places[ids[place]] = place
                }
                members.removeLast()
                ids.removeLast()
            }
        }
    }

    package struct Iterator: IteratorProtocol {
        fileprivate var pairs: Zip2Sequence<[SessionID], [Member]>.Iterator

        package mutating func next() -> (key: SessionID, value: Member)? {
            pairs.next().map { (key: $0.0, value: $0.1) }
        }
    }

    /// `(key:value:)` pairs, as a dictionary's.
    package func makeIterator() -> Iterator {
        Iterator(pairs: zip(ids, members).makeIterator())
    }
}

/// Encoded as the dictionary it replaced, so snapshots and journals written before read alike.
extension SessionTable: Codable {
    package init(from decoder: any Decoder) throws {
        let dictionary = try decoder.singleValueContainer().decode([SessionID: Member].self)
        // By id, so that every node that loads one snapshot holds the same order.
        for (id, member) in dictionary.sorted(by: { $0.key < $1.key }) { self[id] = member }
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Dictionary(uniqueKeysWithValues: zip(ids, members)))
    }
}

/// Equal when they hold the same members under the same ids, in any order.
extension SessionTable: Equatable {
    package static func == (lhs: SessionTable, rhs: SessionTable) -> Bool {
        lhs.count == rhs.count && lhs.allSatisfy { rhs[$0.key] == $0.value }
    }
}
