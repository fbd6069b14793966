import ChatTestSupport
import NIOCore
import NIOEmbedded
import Testing

@testable import ChatServer

@Suite struct LineFrameHandlerTests {
    private func decode(_ input: String, maximum: Int = 16) throws -> [InboundLine] {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(LineFrameHandler(maximumLineBytes: maximum))
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
        try channel.pipeline.syncOperations.addHandler(LineFrameHandler(maximumLineBytes: 16))
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
        try channel.pipeline.syncOperations.addHandler(LineFrameHandler(maximumLineBytes: 16))
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
        try channel.pipeline.syncOperations.addHandler(LineFrameHandler(maximumLineBytes: 64))
        try channel.writeInbound(ByteBuffer(bytes: bytes))
        #expect(try channel.readInbound(as: InboundLine.self) == .line("hello"))
        _ = try channel.finish()
    }

    @Test func aHalfLineAtEndOfStreamIsDropped() throws {
        #expect(try decode("done\nhalf") == [.line("done")])
    }

    @Test func framesTheSameWhateverTheReadBoundaries() throws {
        let input = Array(("hello\r\nworld\n" + String(repeating: "z", count: 40) + "\nafter\nhal").utf8)
        let expected: [InboundLine] = [.line("hello"), .line("world"), .tooLong, .line("after")]
        // Byte by byte, in one piece, and in pieces of every size from 2 to 9.
        var cuts: [[Int]] = [Array(1...input.count), [input.count]]
        for size in 2...9 { cuts.append(Array(stride(from: size, to: input.count, by: size)) + [input.count]) }
        for ends in cuts {
            let channel = EmbeddedChannel()
            try channel.pipeline.syncOperations.addHandler(LineFrameHandler(maximumLineBytes: 16))
            var start = 0
            for end in ends {
                try channel.writeInbound(ByteBuffer(bytes: input[start..<end]))
                start = end
            }
            var lines: [InboundLine] = []
            while let line: InboundLine = try channel.readInbound() { lines.append(line) }
            #expect(lines == expected, "read in pieces ending at \(ends)")
            _ = try channel.finish()
        }
    }

    /// A read that comes in while a line is handed on (a handler further on made the
    /// channel read) is framed after the lines already read, in order.
    @Test func aReadThatComesInWhileLinesAreHandedOnKeepsItsPlace() throws {
        final class ReadsMoreOnTheFirstLine: ChannelInboundHandler {
            typealias InboundIn = InboundLine
            var lines: [InboundLine] = []
            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                lines.append(unwrapInboundIn(data))
                if lines.count == 1 { context.pipeline.fireChannelRead(ByteBuffer(string: "rd\nfourth\n")) }
            }
        }
        let channel = EmbeddedChannel()
        let reader = ReadsMoreOnTheFirstLine()
        try channel.pipeline.syncOperations.addHandler(LineFrameHandler(maximumLineBytes: 16))
        try channel.pipeline.syncOperations.addHandler(reader)
        try channel.writeInbound(ByteBuffer(string: "first\nsecond\nthi"))
        #expect(reader.lines == [.line("first"), .line("second"), .line("third"), .line("fourth")])
        _ = try channel.finish()
    }
}
