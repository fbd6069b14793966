import Foundation
import Testing

@testable import ChatHub

/// The dense session table answers as the dictionary it replaced, and is stored as one.
@Suite struct SessionTableTests {
    private func member(_ id: SessionID) -> Member {
        Member(
            name: "user\(id)", key: "user\(id)", address: SessionAddress(id: id, shard: Int(id % 4)),
            roomKey: "#general", emailKey: "u\(id)@example.com", ip: "203.0.113.\(id % 250)", isOperator: false)
    }

    @Test func addsReplacesAndRemovesAsADictionary() throws {
        var table = SessionTable()
        var model: [SessionID: Member] = [:]
        var random = SystemRandomNumberGenerator()
        for step in 0..<5_000 {
            let id = SessionID.random(in: 1...300, using: &random)
            switch step % 3 {
            case 0, 1:
                var changed = member(id)
                changed.roomKey = "#room\(step)"
                table[id] = changed
                model[id] = changed
            default:
                table[id] = nil
                model[id] = nil
            }
            #expect(table.count == model.count)
            #expect(table[id] == model[id])
        }
        #expect(Dictionary(uniqueKeysWithValues: table.map { ($0.key, $0.value) }) == model)
        #expect(Set(table.keys) == Set(model.keys))
        #expect(table.values.count == model.count)

        // Stored as the dictionary: a snapshot written by either reads back into the other.
        let stored = try JSONEncoder().encode(table)
        #expect(try JSONDecoder().decode([SessionID: Member].self, from: stored) == model)
        let loaded = try JSONDecoder().decode(SessionTable.self, from: JSONEncoder().encode(model))
        #expect(loaded == table)
        // Loaded in id order, whatever order the dictionary had.
        #expect(loaded.keys == model.keys.sorted())
    }
}
