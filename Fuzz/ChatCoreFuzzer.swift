// A libFuzzer target for the code that reads what clients send: the line framer (with
// arbitrary read boundaries), telnet stripping and UTF-8 decoding, trimming, the command
// parser, the sanitiser and the validators. Built together with ChatCore's sources:
//
//   swiftc -sanitize=fuzzer,address -parse-as-library -module-name ChatCoreFuzzer \
//       Sources/ChatCore/*.swift Fuzz/ChatCoreFuzzer.swift -o .build-fuzz/chat-core-fuzzer
//   .build-fuzz/chat-core-fuzzer -max_total_time=60 -max_len=16384
//
// Each line is also read as the web listener's Origin and X-Forwarded-For headers.
// The same input is also read as the start of a connection behind a load balancer: the
// PROXY protocol header parser, whole and in every split the read size gives; and as a
// journal file (JournalFormat) and as a snapshot file (SnapshotFileFormat), as it is and
// behind a valid header.
//
// Invariants checked on every input: no crash; no line longer than the maximum; sanitised
// text has no control, escape or bidi-override characters; a header's length is within
// the bytes and the bound; a prefix of a header is never judged a different header; a
// journal's records lie in order within the file, before where its end is reported, read
// the same given in pieces of 1, 7 and 64 bytes, and read back the same once written again.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard !input.isEmpty else { return 0 }
    // The first byte picks the read size and the maximum line length, the rest is the stream.
    let chunk = Int(input[0] % 64) + 1
    let maximum = Int(input[0] / 64) * 32 + 16
    exerciseProxyHeader(input.dropFirst(), chunk: chunk)
    exerciseJournal(input)
    exerciseJournal(JournalFormat.header + input)
    exerciseSnapshotFile(input)
    exerciseSnapshotFile(SnapshotFileFormat.header + input)
    var framer = LineFramer(maximumLineBytes: maximum)
    var buffer: [UInt8] = []
    var offset = 1
    let rules = UsernameRules()
    while offset < input.count {
        buffer += input[offset..<min(offset + chunk, input.count)]
        offset += chunk
        framing: while true {
            switch framer.step(buffer) {
            case .line(let length, let consumed):
                precondition(length <= maximum && consumed <= buffer.count)
                let text = LineFramer.text(of: buffer.prefix(length))
                buffer.removeFirst(consumed)
                exercise(text, rules: rules)
            case .tooLong(let consumed), .skip(let consumed):
                precondition(consumed <= buffer.count)
                buffer.removeFirst(consumed)
            case .needMoreData(let consumed):
                precondition(consumed <= buffer.count)
                buffer.removeFirst(consumed)
                break framing
            }
        }
        precondition(buffer.count <= maximum + chunk, "the framer kept more than a line")
    }
    return 0
}

private func exercise(_ text: String, rules: UsernameRules) {
    guard let line = InputLine.trimmed(text) else { return }
    let clean = TextSanitizer.sanitize(line)
    for scalar in clean.unicodeScalars {
        let value = scalar.value
        precondition(value >= 0x20 && !(0x7F...0x9F).contains(value), "control character survived")
        precondition(!(0x202A...0x202E).contains(value) && !(0x2066...0x2069).contains(value), "bidi survived")
    }
    switch ChatCommand.parse(line) {
    case .success(.say(let message)): precondition(!message.isEmpty)
    case .success, .failure: break
    }
    _ = EmailAddress(line)
    _ = rules.violation(in: line)
    _ = RoomName(line)
    exerciseWebHeaders(String(line))
}

/// A line as the web listener's headers: an `Origin` (normalised twice is normalised once)
/// and an `X-Forwarded-For` (the client is the peer, or an address the header holds).
private func exerciseWebHeaders(_ value: String) {
    if let origin = WebOrigin(value) {
        precondition(WebOrigin(origin.text)?.text == origin.text, "an origin's spelling is not stable")
    }
    let peer = IPAddress("127.0.0.1")!
    let client = ForwardedFor.client(peer: peer, headerValues: [value], trusted: [IPNetwork("127.0.0.0/8")!])
    precondition(client == peer || value.contains(client.isIPv4 ? client.description : ":"), "a client from nowhere")
}

private func exerciseProxyHeader(_ bytes: ArraySlice<UInt8>, chunk: Int) {
    let whole = ProxyHeader.parse(bytes)
    if case .complete(_, let length) = whole {
        precondition(length > 0 && length <= bytes.count && length <= ProxyHeader.maximumLength)
    }
    // Read in pieces: every prefix is incomplete, or already the same verdict as the whole.
    var end = bytes.startIndex
    while end < bytes.endIndex {
        end = min(end + chunk, bytes.endIndex)
        switch ProxyHeader.parse(bytes[bytes.startIndex..<end]) {
        case .incomplete: continue
        case .complete(let header, let length):
            precondition(whole == .complete(header, length: length), "a prefix parsed as another header")
            return
        case .invalid:
            if case .invalid = whole { return }
            preconditionFailure("a prefix was refused, the whole was not")
        }
    }
}

private func exerciseJournal(_ bytes: [UInt8]) {
    guard let reading = try? JournalFormat.read(bytes) else { return }
    var previous = 0
    var rewritten = JournalFormat.header
    for record in reading.records {
        precondition(record.lowerBound >= previous && record.upperBound <= bytes.count, "a record out of place")
        precondition(!record.isEmpty && record.count <= JournalFormat.maximumRecordLength, "a record's length")
        previous = record.upperBound
        JournalFormat.append(bytes[record], to: &rewritten)
    }
    switch reading.end {
    case .clean: precondition(previous == bytes.count || reading.records.isEmpty, "a clean end before the end")
    case .tornTail(let offset), .damaged(let offset): precondition(offset >= previous && offset <= bytes.count)
    }
    // Given in pieces, as a start reads a long journal, the file reads as it does whole.
    for size in [1, 7, 64] {
        var reader = JournalFormat.Reader()
        var records: [Range<Int>] = []
        var offset = 0
        while offset < bytes.count {
            try? reader.feed(bytes[offset..<min(offset + size, bytes.count)]) { payload, start in
                let range =
                    (start + JournalFormat.frameOverhead)..<(start + JournalFormat.frameOverhead + payload.count)
                precondition(payload.elementsEqual(bytes[range]), "a record read in pieces differently")
                records.append(range)
            }
            offset += size
        }
        precondition(records == reading.records && reader.finish() == reading.end, "pieces read unlike the whole")
    }
    guard let again = try? JournalFormat.read(rewritten) else { preconditionFailure("a rewritten journal unread") }
    precondition(again.end == .clean && again.records.count == reading.records.count, "rewritten differently")
    for (first, second) in zip(reading.records, again.records) {
        precondition(bytes[first].elementsEqual(rewritten[second]), "a record read back differently")
    }
}

private func exerciseSnapshotFile(_ bytes: [UInt8]) {
    guard let contents = try? SnapshotFileFormat.contents(of: bytes) else { return }
    precondition(SnapshotFileFormat.file(Array(contents)) == bytes, "a snapshot file read as another")
}
