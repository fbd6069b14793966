import ChatCore

/// The resume tokens of the chat (SPEC §13): what lets an account back in without a new
/// code. Only SHA-256 hashes of the tokens are kept, each bound to an e-mail key with its
/// expiry; for each account with tokens, where it was last (its name and room), so that a
/// resume puts it back there. Part of ``HubState``: journaled, replicated and snapshotted
/// like a ban.
package struct ResumeTokens: Codable, Equatable, Sendable {
    struct Token: Codable, Equatable, Sendable {
        var emailKey: String
        var expires: LogTime
    }

    /// Where an account was when it last left: the name it had and the room it was in.
    package struct Place: Codable, Equatable, Sendable {
        package var name: String
        package var roomKey: String
    }

    /// By hash (lower-case hexadecimal SHA-256 of the token).
    private(set) var tokens: [String: Token] = [:]
    private var hashesByEmail: [String: Set<String>] = [:]
    private(set) var places: [String: Place] = [:]

    var count: Int { tokens.count }

    /// Whether the account has a token that is still valid.
    func hasTokens(_ emailKey: String) -> Bool {
        hashesByEmail[emailKey]?.isEmpty == false
    }

    mutating func issue(_ hash: String, for emailKey: String, expires: LogTime) {
        tokens[hash] = Token(emailKey: emailKey, expires: expires)
        hashesByEmail[emailKey, default: []].insert(hash)
    }

    /// The account a valid token belongs to.
    func account(of hash: String, at now: LogTime) -> String? {
        guard let token = tokens[hash], now < token.expires else { return nil }
        return token.emailKey
    }

    /// The account a token belongs to, expired or not.
    func owner(of hash: String) -> String? { tokens[hash]?.emailKey }

    mutating func revoke(_ hash: String) {
        guard let token = tokens.removeValue(forKey: hash) else { return }
        hashesByEmail[token.emailKey]?.remove(hash)
        forgetIfEmpty(token.emailKey)
    }

    /// Every token of the account (`/logout all`, a ban).
    mutating func revokeAll(of emailKey: String) {
        for hash in hashesByEmail.removeValue(forKey: emailKey) ?? [] { tokens[hash] = nil }
        places[emailKey] = nil
    }

    /// Notes where an account with tokens was when it left (nothing for other accounts:
    /// the table stays as small as the tokens).
    mutating func left(_ emailKey: String, as name: String, from roomKey: String) {
        guard hasTokens(emailKey) else { return }
        places[emailKey] = Place(name: name, roomKey: roomKey)
    }

    func place(of emailKey: String) -> Place? { places[emailKey] }

    /// Forgets expired tokens (and the places of accounts left without any).
    mutating func sweep(at now: LogTime) {
        for (hash, token) in tokens where now >= token.expires {
            tokens[hash] = nil
            hashesByEmail[token.emailKey]?.remove(hash)
            forgetIfEmpty(token.emailKey)
        }
    }

    private mutating func forgetIfEmpty(_ emailKey: String) {
        guard hashesByEmail[emailKey]?.isEmpty != false else { return }
        hashesByEmail[emailKey] = nil
        places[emailKey] = nil
    }
}
