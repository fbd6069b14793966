import ChatCore

/// Staying signed in (SPEC §13): resume tokens issued, revoked and used. The tokens
/// themselves never reach the hub; their hashes do.
extension HubState {
    mutating func issueToken(_ session: SessionID, hash: String, at now: LogTime, _ effects: inout [HubEffect]) {
        guard let member = sessions[session] else { return }
        resumeTokens.issue(hash, for: member.emailKey, expires: now + .seconds(configuration.resumeTokenDays * 86_400))
        effects.append(.answer(member.address, .tokenIssued))
    }

    mutating func revokeTokens(_ session: SessionID, hash: String?) {
        guard let member = sessions[session] else { return }
        guard let hash else { return resumeTokens.revokeAll(of: member.emailKey) }
        // Only a token of the caller's own account: a hash is not a way to log others out.
        if resumeTokens.owner(of: hash) == member.emailKey {
            resumeTokens.revoke(hash)
        }
    }

    /// A `/resume`: the token's account, its stale session replaced, and a slot for the
    /// connection if it had none.
    mutating func resume(
        _ requester: SessionAddress, hash: String, ip: String, display: String, admitted: Bool, at now: LogTime,
        _ effects: inout [HubEffect]
    ) -> HubAnswer.ResumeDecision {
        // Guessing tokens costs what guessing codes does: each attempt counts against the
        // client's hourly code requests and the server-wide rate; a valid one is forgiven.
        if let wait = codeRequests.attemptResume(client: ip, at: now) {
            return .refused(.tooManyResumeAttempts(retryAfterSeconds: wait.roundedUpSeconds))
        }
        guard let emailKey = resumeTokens.account(of: hash, at: now), !isBanned(emailKey, at: now),
            !isBanned(ip, at: now)
        else {
            return .refused(.invalidResumeToken)
        }
        codeRequests.resumeSucceeded(client: ip)
        var place = resumeTokens.place(of: emailKey)
        // The account's stale sessions (a dead node's not yet timed out, a half-open
        // connection) end now, in id order so every replica does the same.
        let stale = sessions.filter { $0.value.emailKey == emailKey && $0.key != requester.id }.map(\.key).sorted()
        for session in stale {
            guard let member = sessions[session] else { continue }
            place = ResumeTokens.Place(name: member.name, roomKey: member.roomKey)
            effects.append(.disconnect(member.address, [Self.encode(ServerLine.signedInElsewhere)]))
            release(session, at: now, &effects)
        }
        if !admitted {
            switch admit(requester.id, ip: ip, display: display, at: now) {
            case .admitted: break
            case .refused(let line, let reason): return .notAdmitted(line: line, reason: reason)
            case .refusedUnlessResumed(let line): return .notAdmitted(line: line, reason: .ipLimit)
            }
        }
        return .accepted(emailKey: emailKey, place: place)
    }

    /// Whether a connection from `ip` holding a slot is online under an account with
    /// resume tokens (looked for only while any token exists: a refusal stays cheap).
    func holdsResumableSlot(_ ip: String) -> Bool {
        guard resumeTokens.count > 0 else { return false }
        return connections.contains { session, holder in
            holder == ip && sessions[session].map { resumeTokens.hasTokens($0.emailKey) } == true
        }
    }
}
