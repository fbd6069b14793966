import ChatCore

extension HubCommand {
    /// What the requester is told when this command cannot reach the hub log (a cluster
    /// node without Redis): `ERROR: The chat is briefly unavailable. Please try again in a
    /// moment.` in the form its session expects. `nil` for commands nobody waits on.
    /// - Parameter address: the address of a session that is online, by id.
    package func refusalWhileUnavailable(address: (SessionID) -> SessionAddress?) -> HubEffect? {
        let line = UserError.chatUnavailable.line
        switch self {
        case .admit(let requester, _, _):
            return .answer(requester, .admission(.refused(line: line, reason: .chatUnavailable)))
        case .requestCode(let requester, _, _):
            return .answer(requester, .codeRequest(.unavailable))
        case .login(let requester, _, _, _, _), .loginResumed(let requester, _, _, _, _, _):
            return .answer(requester, .login(.failure(.chatUnavailable)))
        case .resume(let requester, _, _, _, _):
            return .answer(requester, .resume(.refused(.chatUnavailable)))
        case .say(let id, _, _), .join(let id, _), .create(let id, _, _), .leave(let id), .invite(let id, _),
            .kick(let id, _), .setTopic(let id, _), .privateMessage(let id, _, _), .ban(let id, _, _),
            .unban(let id, _), .wall(let id, _), .setAway(let id, _), .rename(let id, _), .dropRoom(let id, _),
            .issueToken(let id, _), .revokeTokens(let id, _):
            return address(id).map { .lines($0, [HubState.encode(line)]) }
        case .release, .codeUsed, .nodeDown, .reannounce, .sweep, .shutdown:
            return nil
        }
    }
}
