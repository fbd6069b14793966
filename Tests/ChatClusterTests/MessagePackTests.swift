import Testing

@testable import ChatCluster

/// The MessagePack Redis's `cmsgpack.pack` writes, read back; anything else refused, never
/// misread or trapped on.
@Suite struct MessagePackTests {
    private static func read(_ bytes: [UInt8]) -> [MessagePack]? {
        var reader = MessagePack.Reader(bytes: bytes)
        var values: [MessagePack] = []
        while !reader.isAtEnd {
            guard let value = reader.next() else { return nil }
            values.append(value)
        }
        return values
    }

    @Test func stringsArraysMapsAndScalarsOfEveryWidth() {
        let long = [UInt8](repeating: 0x61, count: 300)
        let bytes: [UInt8] =
            [0xa2, 0x68, 0x69]  // "hi"
            + [0xda, 0x01, 0x2c] + long  // str16
            + [0x92, 0x01, 0xcd, 0x12, 0x34]  // [1, 0x1234]
            + [0x81, 0xa3, 0x65, 0x72, 0x72, 0xa1, 0x78]  // {err: "x"}
            + [0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0xc0, 0xc3, 0xff]  // a double, nil, true, -1
        #expect(
            Self.read(bytes) == [
                .bytes(ArraySlice(Array("hi".utf8))), .bytes(ArraySlice(long)), .array([.scalar, .scalar]),
                .map([(.bytes(ArraySlice(Array("err".utf8))), .bytes(ArraySlice(Array("x".utf8))))]),
                .scalar, .scalar, .scalar, .scalar,
            ])
    }

    @Test func truncatedOrLyingOrTooDeepIsRefused() {
        for bytes: [UInt8] in [
            [0xa3, 0x61], [0xda, 0x01], [0xdc, 0xff, 0xff], [0xdf, 0xff, 0xff, 0xff, 0xff], [0xc1], [0xcb, 0],
            Array(repeating: 0x91, count: 20) + [0x01],
        ] {
            #expect(Self.read(bytes) == nil, "\(bytes)")
        }
        #expect(Self.read(Array(repeating: 0x91, count: 8) + [0x01]) != nil)
    }

    @Test func whatTheWriterWritesReadsBackAtEveryWidth() {
        let strings: [[UInt8]] = [
            [], [0xff], Array(repeating: 1, count: 255), Array(repeating: 2, count: 256),
            Array(repeating: 3, count: 65_535), Array(repeating: 4, count: 65_536),
        ]
        for count in [0, 15, 16, 65_535, 65_536] {
            var writer = MessagePack.Writer(capacity: 0)
            writer.appendArrayHeader(count: count)
            var reader = MessagePack.Reader(bytes: writer.bytes + Array(repeating: 0xc0, count: count))
            #expect(reader.arrayHeader() == count, "\(count)")
        }
        var writer = MessagePack.Writer(capacity: 0)
        for string in strings { writer.append(binary: string) }
        var reader = MessagePack.Reader(bytes: writer.bytes)
        for string in strings { #expect(reader.string().map(Array.init) == string) }
        #expect(reader.isAtEnd)
        // Read as values too, and a header or string that is not there reads nothing.
        #expect(Self.read(writer.bytes) == strings.map { .bytes(ArraySlice($0)) })
        var other = MessagePack.Reader(bytes: [0xa1, 0x78, 0x91, 0xc0])
        #expect(other.arrayHeader() == nil)
        #expect(other.string() == [0x78])
        #expect(other.string() == nil)
        #expect(other.arrayHeader() == 1)
        // A count beyond the bytes left is refused.
        var lying = MessagePack.Reader(bytes: [0xdc, 0x00, 0x05, 0xc0])
        #expect(lying.arrayHeader() == nil)
        #expect(lying.index == 0)
    }
}
