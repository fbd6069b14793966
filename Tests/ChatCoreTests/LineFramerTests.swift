import Testing

@testable import ChatCore

@Suite struct LineFramerTests {
    /// Feeds `input` in pieces of `chunk` bytes, the way reads arrive, and collects events.
    private func frame(_ input: [UInt8], maximum: Int, chunk: Int) -> [String] {
        var framer = LineFramer(maximumLineBytes: maximum)
        var buffer: [UInt8] = []
        var events: [String] = []
        var offset = 0
        while offset < input.count {
            buffer += input[offset..<min(offset + chunk, input.count)]
            offset += chunk
            loop: while true {
                switch framer.step(buffer) {
                case .line(let length, let consumed):
                    events.append(LineFramer.text(of: buffer.prefix(length)))
                    buffer.removeFirst(consumed)
                case .tooLong(let consumed):
                    events.append("<too long>")
                    buffer.removeFirst(consumed)
                case .skip(let consumed):
                    buffer.removeFirst(consumed)
                case .needMoreData(let consumed):
                    buffer.removeFirst(consumed)
                    break loop
                }
                #expect(buffer.count <= maximum + chunk)
            }
        }
        return events
    }

    @Test(arguments: [1, 2, 3, 7, 64, 1000])
    func theSameEventsWhateverTheReadSize(chunk: Int) {
        let input = Array("one\r\ntwo\n\(String(repeating: "x", count: 50))\nthree\n".utf8)
        #expect(frame(input, maximum: 10, chunk: chunk) == ["one", "two", "<too long>", "three"])
    }

    @Test func telnetSequencesAreDropped() {
        #expect(LineFramer.text(of: [0xFF, 0xFB, 0x01, 0x61, 0xFF, 0xFF, 0x62]) == "ab")
        #expect(LineFramer.text(of: [0xFF]) == "")
    }
}
