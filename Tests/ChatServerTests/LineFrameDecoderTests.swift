import ChatTestSupport
import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

@testable import ChatServer

@Suite struct LineFrameDecoderTests {
    private func decode(_ input: String, maximum: Int = 16) throws -> [InboundLine] {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(LineFrameDecoder(maximumLineBytes: maximum)))
        try channel.writeInbound(ByteBuffer(string: input))
        var lines: [InboundLine] = []
        while let line: InboundLine = try channel.readInbound() { lines.append(line) }
        _ = try channel.finish()
        return lines
    }

    @Test func splitsOnLFAndCRLF() throws {
        #expect(try decode("a\nb\r\n\nc") == [.line("a"), .line("b"), .line("")])
    }

    @Test func aLineOfExactlyTheMaximumPasses() throws {
        #expect(try decode(String(repeating: "x", count: 16) + "\n") == [.line(String(repeating: "x", count: 16))])
    }

    @Test func anOverlongLineInOneReadIsReportedOnceAndDropped() throws {
        #expect(try decode(String(repeating: "x", count: 17) + "\nok\n") == [.tooLong, .line("ok")])
        #expect(try decode(String(repeating: "x", count: 100) + "\nok\n") == [.tooLong, .line("ok")])
    }

    @Test func anOverlongLineAcrossReadsIsNeverBuffered() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(LineFrameDecoder(maximumLineBytes: 16)))
        for _ in 0..<1000 {
            try channel.writeInbound(ByteBuffer(string: String(repeating: "y", count: 10)))
        }
        try channel.writeInbound(ByteBuffer(string: "end\nnext\n"))
        #expect(try channel.readInbound(as: InboundLine.self) == .tooLong)
        #expect(try channel.readInbound(as: InboundLine.self) == .line("next"))
        #expect(try channel.readInbound(as: InboundLine.self) == nil)
        _ = try channel.finish()
    }

    @Test func invalidUTF8IsReplaced() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(LineFrameDecoder(maximumLineBytes: 16)))
        try channel.writeInbound(ByteBuffer(bytes: [0x61, 0xFE, 0x00, 0x62, 0x0A]))
        #expect(try channel.readInbound(as: InboundLine.self) == .line("a\u{FFFD}\u{0}b"))
        _ = try channel.finish()
    }

    @Test func telnetCommandsAreRemoved() throws {
        // IAC DO ECHO, IAC WILL SGA, IAC SB NAWS 0 80 0 24 IAC SE, IAC NOP, IAC IAC.
        let bytes: [UInt8] =
            [0xFF, 0xFD, 0x01] + Array("he".utf8) + [0xFF, 0xFB, 0x03] + Array("llo".utf8)
            + [0xFF, 0xFA, 0x1F, 0x00, 0x50, 0x00, 0x18, 0xFF, 0xF0, 0xFF, 0xF1, 0xFF, 0xFF, 0x0A]
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(LineFrameDecoder(maximumLineBytes: 64)))
        try channel.writeInbound(ByteBuffer(bytes: bytes))
        #expect(try channel.readInbound(as: InboundLine.self) == .line("hello"))
        _ = try channel.finish()
    }

    @Test func aHalfLineAtEndOfStreamIsDropped() throws {
        #expect(try decode("done\nhalf") == [.line("done")])
    }

    @Test func decodesTheSameWhateverTheReadBoundaries() throws {
        // NIOTestUtils feeds the input byte by byte, in one piece, and in random pieces.
        let input = ByteBuffer(string: "hello\r\nworld\n" + String(repeating: "z", count: 40) + "\nafter\n")
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [(input, [.line("hello"), .line("world"), .tooLong, .line("after")])],
            decoderFactory: { LineFrameDecoder(maximumLineBytes: 16) }
        )
    }
}
