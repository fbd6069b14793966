import NIOCore
import Testing

@testable import RedisClient

struct RESPParserTests {
    private func parseAll(_ text: String, parser: RESPParser = RESPParser()) throws -> [RESPValue] {
        var buffer = ByteBuffer(string: text)
        var values: [RESPValue] = []
        while let value = try parser.next(from: &buffer) { values.append(value) }
        #expect(buffer.readableBytes == 0, "left over: \(String(buffer: buffer).debugDescription)")
        return values
    }

    @Test func everyRESP3Type() throws {
        let wire =
            "+OK\r\n-ERR unknown command\r\n:-42\r\n$5\r\nhe\r\no\r\n$0\r\n\r\n_\r\n#t\r\n#f\r\n,3.25\r\n,-inf\r\n"
            + "(-3492890328409238509324850943850943825024385\r\n!21\r\nSYNTAX invalid syntax\r\n"
            + "=15\r\ntxt:Some string\r\n*2\r\n:1\r\n*1\r\n+x\r\n%2\r\n+a\r\n:1\r\n+b\r\n#f\r\n~2\r\n:1\r\n:2\r\n"
            + ">3\r\n+message\r\n+chan\r\n$2\r\nhi\r\n|1\r\n+ttl\r\n:3600\r\n+after-attribute\r\n"
        let values = try parseAll(wire)
        #expect(
            values == [
                .simpleString("OK"), .simpleError("ERR unknown command"), .integer(-42),
                .bulkString(Array("he\r\no".utf8)), .bulkString([]), .null, .boolean(true), .boolean(false),
                .double(3.25), .double(-.infinity), .bigNumber("-3492890328409238509324850943850943825024385"),
                .bulkError("SYNTAX invalid syntax"), .verbatimString(format: "txt", text: "Some string"),
                .array([.integer(1), .array([.simpleString("x")])]),
                .map([.init(.simpleString("a"), .integer(1)), .init(.simpleString("b"), .boolean(false))]),
                .set([.integer(1), .integer(2)]),
                .push([.simpleString("message"), .simpleString("chan"), .bulk("hi")]),
                .simpleString("after-attribute"),
            ])
        let nan = try parseAll(",nan\r\n")
        guard case .double(let value) = nan.first else {
            Issue.record("not a double: \(nan)")
            return
        }
        #expect(value.isNaN)
    }

    @Test func resp2NullsReadAsNull() throws {
        #expect(try parseAll("$-1\r\n*-1\r\n") == [.null, .null])
    }

    @Test func aValueSplitOverManyReadsIsReadOnceWhole() throws {
        let wire = Array("*3\r\n$3\r\nfoo\r\n%1\r\n+k\r\n,1.5\r\n:7\r\n+next\r\n".utf8)
        let parser = RESPParser()
        var buffer = ByteBuffer()
        var values: [RESPValue] = []
        for byte in wire {
            buffer.writeInteger(byte)
            // Nothing is consumed until a value is whole.
            let before = buffer.readableBytes
            if let value = try parser.next(from: &buffer) {
                values.append(value)
            } else {
                #expect(buffer.readableBytes == before)
            }
        }
        #expect(
            values == [
                .array([.bulk("foo"), .map([.init(.simpleString("k"), .double(1.5))]), .integer(7)]),
                .simpleString("next"),
            ])
    }

    @Test func malformedInputIsAnErrorNotACrash() {
        for wire in [
            "?x\r\n", ":12a\r\n", "#x\r\n", "_x\r\n", ",abc\r\n", "(12x\r\n", "$3\r\nabcd\r\n", "$-2\r\n", "~-1\r\n",
            "+OK\rX", "=3\r\ntxt\r\n", "!-1\r\n", "*x\r\n",
        ] {
            var buffer = ByteBuffer(string: wire)
            #expect(throws: RESPParser.Error.self, "\(wire.debugDescription)") { try RESPParser().next(from: &buffer) }
        }
    }

    @Test func limitsHoldAgainstAHostileServer() throws {
        var limits = RESPParser.Limits()
        limits.maximumDepth = 3
        limits.maximumBulkLength = 10
        limits.maximumAggregateCount = 100
        limits.maximumLineLength = 16
        let parser = RESPParser(limits: limits)
        for wire in [
            "*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", "$11\r\n", "*101\r\n", "%51\r\n", "+" + String(repeating: "a", count: 17),
        ] {
            var buffer = ByteBuffer(string: wire)
            #expect(throws: RESPParser.Error.self, "\(wire.debugDescription)") { try parser.next(from: &buffer) }
        }
        // A huge claimed count with few bytes behind it waits for them, without reserving
        // memory for the claim.
        var buffer = ByteBuffer(string: "*100\r\n:1\r\n")
        #expect(try parser.next(from: &buffer) == nil)
        #expect(buffer.readableBytes == 10)
    }

    @Test func commandsAreArraysOfBulkStrings() {
        let buffer = RESPCommand(["SET", "key", "a\r\nb"]).encoded
        #expect(String(buffer: buffer) == "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$4\r\na\r\nb\r\n")
        #expect(
            RESPCommand(bytes: [Array("SET".utf8), Array("key".utf8), [0, 255]]).encoded
                == ByteBuffer(
                    bytes: Array("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$2\r\n".utf8) + [0, 255] + Array("\r\n".utf8)))
        // Not its arguments' UTF-8 counts but their bytes: a name with more bytes than characters.
        #expect(String(buffer: RESPCommand(["GET", "é"]).encoded) == "*2\r\n$3\r\nGET\r\n$2\r\né\r\n")
        #expect(RESPCommand(["hello", "3", "AUTH", "user", "secret"]).name == "HELLO")
    }

    @Test func aCommandFromArgumentsEncodedOnceIsTheSameCommand() {
        let head = RESPCommand.Arguments(["eval", "return 1", "1", "k"])
        let command = RESPCommand(head) { rest in
            rest.append(2)
            rest.append("é")
            rest.append([0, 255])
        }
        let whole = RESPCommand(bytes: [
            Array("eval".utf8), Array("return 1".utf8), Array("1".utf8), Array("k".utf8), Array("2".utf8),
            Array("é".utf8), [0, 255],
        ])
        #expect(command.encoded == whole.encoded)
        #expect(command.name == "EVAL")
        // The head is not used up: the next command starts with it too.
        #expect(RESPCommand(head) { _ in }.encoded == RESPCommand(["eval", "return 1", "1", "k"]).encoded)
    }
}
