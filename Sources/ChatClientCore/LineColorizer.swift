/// How a server line looks on a terminal: system lines, errors, your own lines, private
/// messages and actions each in their style, every username in a colour of its own that
/// stays the same for that name, and a highlighted line (and a bell) when someone writes
/// your name or sends you a private message.
public struct LineColorizer: Sendable {
    /// Whether to use colours (`NO_COLOR`, `--no-color` and non-terminals turn them off).
    public var colors: Bool

    public init(colors: Bool) {
        self.colors = colors
    }

    public struct Rendered: Equatable, Sendable {
        public var text: String
        /// Ring the terminal's bell: a private message, or your name mentioned.
        public var bell: Bool
    }

    /// - Parameter me: your username, once logged in.
    public func render(_ line: String, me: String?) -> Rendered {
        let kind = ServerLineKind(line)
        let mentioned = isMention(kind, me: me)
        var bell = mentioned
        if case .privateMessage = kind { bell = true }
        guard colors else { return Rendered(text: line, bell: bell) }
        let text: String
        switch kind {
        case .system:
            text = Self.paint(line, Self.systemStyle)
        case .error:
            text = Self.paint(line, Self.errorStyle)
        case .chat(let from, let body):
            let isMine = from.lowercased() == me?.lowercased()
            let name = Self.paint("[\(from)]", isMine ? Self.ownStyle : Self.nameStyle(from))
            let content = mentioned ? Self.paint(body, Self.mentionStyle) : body
            text = "\(name): \(content)"
        case .privateMessage(let from, let body):
            text = Self.paint("[\(from)]: [PM] ", Self.privateStyle) + Self.paint(body, Self.privateStyle)
        case .privateEcho:
            text = Self.paint(line, Self.privateStyle)
        case .action(let by, let body):
            let isMine = by.lowercased() == me?.lowercased()
            let name = Self.paint(by, isMine ? Self.ownStyle : Self.nameStyle(by))
            let content = Self.paint(body, mentioned ? Self.mentionStyle : Self.actionStyle)
            text = Self.paint("* ", Self.actionStyle) + name + " " + content
        case .plain:
            text = line
        }
        return Rendered(text: text, bell: bell)
    }

    /// A hint or notice from the client itself (not the server).
    public func clientNotice(_ text: String) -> String {
        let line = "-- \(text)"
        return colors ? Self.paint(line, Self.clientStyle) : line
    }

    /// Someone else wrote your name as a word.
    private func isMention(_ kind: ServerLineKind, me: String?) -> Bool {
        guard let me, !me.isEmpty else { return false }
        let (author, text): (String, String)
        switch kind {
        case .chat(let from, let body): (author, text) = (from, body)
        case .action(let by, let body): (author, text) = (by, body)
        default: return false
        }
        guard author.lowercased() != me.lowercased() else { return false }
        let words = text.lowercased().split { !($0.isLetter || $0.isNumber || $0 == "_") }
        return words.contains(Substring(me.lowercased()))
    }

    // MARK: Styles (SGR parameters)

    static let systemStyle = "36"  // cyan
    static let errorStyle = "1;31"  // bold red
    static let ownStyle = "1;32"  // bold green
    static let privateStyle = "1;35"  // bold magenta
    static let actionStyle = "3"  // italic
    static let mentionStyle = "1;43;30"  // black on yellow
    static let clientStyle = "2"  // dim

    /// 256-colour palette entries that read well on dark and light backgrounds, none of
    /// them the colours above.
    static let namePalette = [33, 39, 69, 75, 105, 135, 166, 172, 178, 202, 208, 214]

    /// The name's colour: chosen by a hash of the lower-cased name (FNV-1a), so it is the
    /// same in every session and on every machine.
    static func nameStyle(_ name: String) -> String {
        var hash: UInt32 = 2_166_136_261
        for byte in name.lowercased().utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 16_777_619
        }
        return "38;5;\(namePalette[Int(hash % UInt32(namePalette.count))])"
    }

    static func paint(_ text: String, _ style: String) -> String {
        "\u{1B}[\(style)m\(text)\u{1B}[0m"
    }
}
