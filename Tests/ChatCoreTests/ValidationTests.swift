import Testing

@testable import ChatCore

@Suite struct ValidationTests {
    @Test(arguments: ["alice@example.com", "a.b+tag@sub.example.org", "X_Y-z@EXAMPLE.IO", "o'neil@example.ie"])
    func validEmails(_ input: String) throws {
        let email = try #require(EmailAddress(input))
        #expect(email.value == input)
        #expect(email.key == input.lowercased())
    }

    @Test(arguments: [
        "", "alice", "alice@", "@example.com", "alice@example", "alice@@example.com", "al ice@example.com",
        "alice@example.c", "alice@exa_mple.com", ".alice@example.com", "al..ice@example.com",
        "alice@example.com\r\nRCPT TO:<x@y.z>", "alice@-example.com", "alice@example.123",
        "ålice@example.com", "alice\u{0}@example.com",
    ])
    func invalidEmails(_ input: String) {
        #expect(EmailAddress(input) == nil)
    }

    @Test func emailLengthIsBounded() {
        let long = String(repeating: "a", count: 64) + "@" + String(repeating: "b", count: 190) + ".com"
        #expect(EmailAddress(long) == nil)
        #expect(EmailAddress(String(repeating: "a", count: 65) + "@example.com") == nil)
    }

    @Test func usernames() {
        let rules = UsernameRules(minimumLength: 3, maximumLength: 16)
        #expect(rules.violation(in: "alice_99") == nil)
        #expect(rules.violation(in: "Al") == .length(minimum: 3, maximum: 16))
        #expect(rules.violation(in: String(repeating: "a", count: 17)) == .length(minimum: 3, maximum: 16))
        #expect(rules.violation(in: "al ice") == .characters)
        #expect(rules.violation(in: "alice!") == .characters)
        #expect(rules.violation(in: "ålice") == .characters)
        #expect(
            UserError.invalidUsername(.characters).line
                == "ERROR: Username may only contain letters, digits and underscores.")
    }

    @Test func roomNames() throws {
        let gaming = try #require(RoomName("Gaming"))
        #expect(gaming.display == "#Gaming")
        #expect(gaming.key == "#gaming")
        #expect(RoomName("#gaming") == gaming)
        #expect(RoomName("#a-b_c1") != nil)
        #expect(RoomName("#" + String(repeating: "x", count: 32)) != nil)
        #expect(RoomName("#" + String(repeating: "x", count: 33)) == nil)
        #expect(RoomName("#") == nil)
        #expect(RoomName("") == nil)
        #expect(RoomName("#bad name") == nil)
        #expect(RoomName("#bad!") == nil)
        #expect(RoomName("##x") == nil)
    }
}
