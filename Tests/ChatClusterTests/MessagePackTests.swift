import Testing

@testable import ChatCluster

/// The MessagePack of the hub log's pushes and records: what Redis's `cmsgpack.pack` and a
/// node's writer write reads back; anything else is refused, never misread or trapped on.
@Suite struct MessagePackTests {
    @Test func stringsAndArrayHeadersOfEveryWidthAsCmsgpackWritesThem() {
        let long = [UInt8](repeating: 0x61, count: 300)
        var reader = MessagePack.Reader(
            bytes: [0xa2, 0x68, 0x69]  // "hi"
                + [0xd9, 0x03] + Array("abc".utf8)  // str8
                + [0xda, 0x01, 0x2c] + long  // str16
                + [0xdb, 0, 0, 0, 1, 0x7a]  // str32
                + [0x92, 0xdc, 0x00, 0x01, 0xdd, 0, 0, 0, 0])  // [[x], []]
        #expect(reader.string() == ArraySlice(Array("hi".utf8)))
        #expect(reader.string() == ArraySlice(Array("abc".utf8)))
        #expect(reader.string() == ArraySlice(long))
        #expect(reader.string() == [0x7a])
        #expect(reader.arrayHeader() == 2)
        #expect(reader.arrayHeader() == 1)
        #expect(reader.arrayHeader() == 0)
        #expect(reader.isAtEnd)
        #expect(reader.string() == nil)
        #expect(reader.arrayHeader() == nil)
    }

    @Test func truncatedLyingOrOtherValuesAreRefusedAndNothingIsRead() {
        for bytes: [UInt8] in [
            [0xa3, 0x61], [0xda, 0x01], [0xdb, 0xff, 0xff, 0xff, 0xff, 0x61], [0xc1], [0x01], [0x91],
        ] {
            var reader = MessagePack.Reader(bytes: bytes)
            #expect(reader.string() == nil, "\(bytes)")
            #expect(reader.index == 0)
        }
        for bytes: [UInt8] in [
            [0x93, 0xc0], [0xdc, 0xff, 0xff], [0xdd, 0xff, 0xff, 0xff, 0xff], [0xdc, 0x00], [0xa1, 0x61], [0x80],
        ] {
            var reader = MessagePack.Reader(bytes: bytes)
            #expect(reader.arrayHeader() == nil, "\(bytes)")
            #expect(reader.index == 0)
        }
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
    }
}
