import Testing

@testable import ChatClientCore

struct KeyDecoderTests {
    @Test func textControlKeysAndEscapeSequences() {
        var decoder = KeyDecoder()
        #expect(decoder.decode(Array("hi".utf8)) == [.text("hi")])
        #expect(decoder.decode([0x0D]) == [.enter])
        #expect(decoder.decode([0x7F, 0x08]) == [.backspace, .backspace])
        #expect(
            decoder.decode([0x01, 0x05, 0x03, 0x04, 0x15, 0x0B, 0x17, 0x0C, 0x09]) == [
                .home, .end, .interrupt, .endOfInput, .deleteToStart, .deleteToEnd, .deleteWord, .redraw, .tab,
            ])
        let arrows = Array("\u{1B}[A\u{1B}[B\u{1B}[C\u{1B}[D\u{1B}OH\u{1B}OF\u{1B}[3~\u{1B}[1~\u{1B}[4~".utf8)
        #expect(decoder.decode(arrows) == [.up, .down, .right, .left, .home, .end, .delete, .home, .end])
        #expect(
            decoder.decode(Array("\u{1B}[1;5C\u{1B}[1;5D\u{1B}b\u{1B}f".utf8)) == [
                .wordRight, .wordLeft, .wordLeft, .wordRight,
            ])
        #expect(decoder.decode(Array("a\u{1B}[Db".utf8)) == [.text("a"), .left, .text("b")])
    }

    @Test func piecesOfASequenceOrOfACharacterWaitForTheRest() {
        var decoder = KeyDecoder()
        #expect(decoder.decode([0x1B]) == [])
        #expect(decoder.decode([UInt8(ascii: "[")]) == [])
        #expect(decoder.decode([UInt8(ascii: "A")]) == [.up])
        let euro = Array("€".utf8)
        #expect(decoder.decode(euro.prefix(2)) == [])
        #expect(decoder.decode(euro.suffix(1)) == [.text("€")])
        // An unknown sequence is swallowed, not typed.
        #expect(decoder.decode(Array("\u{1B}[99zok".utf8)) == [.text("ok")])
    }
}
