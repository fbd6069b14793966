import ChatCore

/// What the terminal client does to stay signed in (SPEC §13), from the server's lines: at
/// the e-mail prompt (or the per-IP refusal that a resume can get past) it answers with the
/// stored token, once per connection; once the user is in, it asks for a fresh token
/// without showing the answer; a refused token is forgotten, and so is one the user signs
/// out of. Pure: the client carries out the steps (sending, storing the file).
public struct StayingSignedIn: Sendable, Equatable {
    public enum Step: Equatable, Sendable {
        /// Send this line (the user did not type it: do not echo it).
        case send(String)
        /// Keep this token for the next connection.
        case store(String)
        /// Forget the stored token.
        case forget
        /// Tell the user this.
        case notice(String)
    }

    /// The token to resume with, if any.
    public private(set) var token: String?
    /// Whether tokens are kept at all (`--no-remember`: no).
    public let remembers: Bool
    private var triedThisConnection = false
    private var askedForToken = false

    public init(token: String?, remembers: Bool) {
        self.token = remembers ? token : nil
        self.remembers = remembers
    }

    /// A new connection: the token may be tried again.
    public mutating func connected() {
        triedThisConnection = false
        askedForToken = false
    }

    /// Follows one server line.
    /// - Returns: what to do, and whether the line is shown (the answer to a `/token` the
    ///   client asked for itself is not).
    public mutating func follow(_ line: String) -> (steps: [Step], show: Bool) {
        if line == ServerLine.emailPrompt || Self.isAddressLimit(line) {
            guard let token, !triedThisConnection else { return ([], true) }
            triedThisConnection = true
            return ([.notice("Signing in with the token kept for this server..."), .send("/resume \(token)")], true)
        }
        if line == UserError.invalidResumeToken.line, token != nil {
            token = nil
            return ([.forget, .notice("The kept token was refused; log in with your e-mail address.")], true)
        }
        if remembers, line.hasPrefix("*** Welcome, ") || line.hasPrefix("*** Welcome back, "), line.hasSuffix("! ***") {
            askedForToken = true
            return ([.send("/token")], true)
        }
        let prefix = "*** Resume token: "
        if remembers, line.hasPrefix(prefix), line.hasSuffix(" ***") {
            let fresh = String(line.dropFirst(prefix.count).dropLast(4))
            token = fresh
            defer { askedForToken = false }
            return ([.store(fresh)], !askedForToken)
        }
        return ([], true)
    }

    /// The user sent a line: `/logout` (or `/logout all`) forgets the token.
    public mutating func userSent(_ line: String) -> [Step] {
        let words = line.split(separator: " ")
        guard words.first?.lowercased() == "/logout", token != nil || remembers else { return [] }
        token = nil
        return [.forget]
    }

    private static func isAddressLimit(_ line: String) -> Bool {
        line.hasPrefix("ERROR: IP address ") && line.hasSuffix(" already has an active connection")
    }
}
