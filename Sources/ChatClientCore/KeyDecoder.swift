/// Turns the bytes a terminal in raw mode sends into ``Key``s: UTF-8 text, control keys,
/// and the escape sequences of xterm-like terminals (arrows, Home, End, Delete, with
/// modifiers). Bytes may arrive in any pieces: an unfinished sequence or character waits
/// for the next call.
public struct KeyDecoder: Sendable {
    private var pending: [UInt8] = []

    public init() {}

    /// The keys in `bytes` (with what was left over from the last call).
    public mutating func decode(_ bytes: some Sequence<UInt8>) -> [Key] {
        pending.append(contentsOf: bytes)
        var keys: [Key] = []
        var index = 0
        var text: [UInt8] = []
        func flushText() {
            if !text.isEmpty {
                keys.append(.text(String(decoding: text, as: UTF8.self)))
                text.removeAll()
            }
        }
        while index < pending.count {
            let byte = pending[index]
            switch byte {
            case 0x1B:
                guard let (key, length) = Self.escape(pending[index...]) else {
                    // Unfinished: keep it for the next read.
                    flushText()
                    pending.removeFirst(index)
                    return keys
                }
                flushText()
                if let key { keys.append(key) }
                index += length
                continue
            case 0x0D, 0x0A:
                flushText()
                keys.append(.enter)
            case 0x7F, 0x08:
                flushText()
                keys.append(.backspace)
            case 0x09:
                flushText()
                keys.append(.tab)
            case 0x01:
                flushText()
                keys.append(.home)
            case 0x05:
                flushText()
                keys.append(.end)
            case 0x02:
                flushText()
                keys.append(.left)
            case 0x06:
                flushText()
                keys.append(.right)
            case 0x10:
                flushText()
                keys.append(.up)
            case 0x0E:
                flushText()
                keys.append(.down)
            case 0x03:
                flushText()
                keys.append(.interrupt)
            case 0x04:
                flushText()
                keys.append(.endOfInput)
            case 0x15:
                flushText()
                keys.append(.deleteToStart)
            case 0x0B:
                flushText()
                keys.append(.deleteToEnd)
            case 0x17:
                flushText()
                keys.append(.deleteWord)
            case 0x0C:
                flushText()
                keys.append(.redraw)
            case 0x00..<0x20: break  // other control bytes mean nothing here
            default:
                // A UTF-8 character: wait for all of its bytes.
                let length = Self.utf8Length(byte)
                guard index + length <= pending.count else {
                    flushText()
                    pending.removeFirst(index)
                    return keys
                }
                text.append(contentsOf: pending[index..<(index + length)])
                index += length
                continue
            }
            index += 1
        }
        flushText()
        pending.removeAll(keepingCapacity: true)
        return keys
    }

    private static func utf8Length(_ lead: UInt8) -> Int {
        switch lead {
        case 0xC0..<0xE0: 2
        case 0xE0..<0xF0: 3
        case 0xF0..<0xF8: 4
        default: 1  // ASCII, or a stray byte that decodes as U+FFFD
        }
    }

    /// The key of the escape sequence at the start of `bytes` and its length; `nil` when
    /// the sequence is not complete yet. An unknown sequence is consumed as no key.
    private static func escape(_ bytes: ArraySlice<UInt8>) -> (Key?, Int)? {
        let start = bytes.startIndex
        guard bytes.count >= 2 else { return nil }
        let second = bytes[start + 1]
        switch second {
        case UInt8(ascii: "["), UInt8(ascii: "O"):
            // CSI or SS3: parameters, then a final byte in 0x40...0x7E.
            var end = start + 2
            while end < bytes.endIndex, !(0x40...0x7E).contains(bytes[end]) { end += 1 }
            guard end < bytes.endIndex else { return bytes.count > 16 ? (nil, bytes.count) : nil }
            let parameters = String(decoding: bytes[(start + 2)..<end], as: UTF8.self)
            let key = csi(final: bytes[end], parameters: parameters)
            return (key, end - start + 1)
        case UInt8(ascii: "b"): return (.wordLeft, 2)
        case UInt8(ascii: "f"): return (.wordRight, 2)
        case 0x7F, 0x08: return (.deleteWord, 2)
        case 0x1B: return (nil, 1)  // Escape pressed alone, then another sequence
        default: return (nil, 2)
        }
    }

    private static func csi(final: UInt8, parameters: String) -> Key? {
        let fields = parameters.split(separator: ";")
        // xterm's modifiers: 5 is Ctrl, 3 is Alt.
        let modified = fields.count > 1 && ["3", "5"].contains(fields[1])
        switch final {
        case UInt8(ascii: "A"): return .up
        case UInt8(ascii: "B"): return .down
        case UInt8(ascii: "C"): return modified ? .wordRight : .right
        case UInt8(ascii: "D"): return modified ? .wordLeft : .left
        case UInt8(ascii: "H"): return .home
        case UInt8(ascii: "F"): return .end
        case UInt8(ascii: "~"):
            switch fields.first {
            case "1", "7": return .home
            case "4", "8": return .end
            case "3": return .delete
            default: return nil
            }
        default: return nil
        }
    }
}
