/// Makes user text safe to show on somebody else's terminal.
///
/// Removes C0 and C1 control characters (a tab becomes a space), whole ANSI/VT escape
/// sequences (CSI, OSC, DCS and two-character escapes) and the Unicode bidirectional
/// override and isolate characters that can make text read differently from what it is.
/// Invalid UTF-8 never gets here: lines are decoded with replacement characters.
public enum TextSanitizer {
    /// - Returns: the text without anything that could control a terminal.
    public static func sanitize(_ text: some StringProtocol) -> String {
        sanitize(String(text))
    }

    /// - Returns: the text without anything that could control a terminal.
    public static func sanitize(_ text: String) -> String {
        // Not generic: the server sanitizes every line it is sent, and generic code called
        // from another module runs unspecialized, a witness call per byte (6 % of a node's
        // user time in a closed loop).
        // Fast path: plain printable ASCII, by far the most common input.
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return text }

        var output = String.UnicodeScalarView()
        var state = EscapeState.text
        for scalar in text.unicodeScalars {
            switch state {
            case .text:
                switch scalar.value {
                case 0x1B:
                    state = .escape
                case 0x9B:
                    state = .controlSequence
                case 0x90, 0x9D, 0x9E, 0x9F, 0x98:
                    state = .controlString
                case 0x09:
                    output.append(" ")
                default:
                    if !isStripped(scalar) { output.append(scalar) }
                }
            case .escape:
                switch scalar {
                case "[": state = .controlSequence
                case "]", "P", "X", "^", "_": state = .controlString
                default: state = .text  // a two-character escape such as ESC c or ESC 7
                }
            case .controlSequence:
                // Parameter and intermediate bytes continue the sequence; a final byte
                // (0x40...0x7E) or anything outside the sequence grammar ends it.
                if !(0x20...0x3F).contains(scalar.value) { state = .text }
            case .controlString:
                // OSC/DCS/... run to BEL or ST (ESC \ or 0x9C); control strings can't
                // nest, so the next ESC ends it as far as the terminal is concerned.
                if scalar.value == 0x07 || scalar.value == 0x9C {
                    state = .text
                } else if scalar.value == 0x1B {
                    state = .escape
                }
            }
        }
        return String(output)
    }

    private enum EscapeState {
        case text, escape, controlSequence, controlString
    }

    private static func isStripped(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F:
            return true
        case 0x202A...0x202E, 0x2066...0x2069, 0x061C, 0x200E, 0x200F:
            return true
        default:
            return false
        }
    }
}
