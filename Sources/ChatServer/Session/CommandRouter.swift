import ChatCore
import ChatHub

/// Turns an online user's chat commands into hub commands and replies, without any I/O.
///
/// Changes to shared state go to the hub log (their effects, errors included, come back
/// through the user's shard, in order with everything else the hub sends); reads that need
/// no order (`/users`, `/rooms`, `/who`, `/topic`, `/bans`) are answered from the state as
/// it is. The user's ignore list is changed here and kept on their ``LocalSession``, where
/// deliveries consult it.
struct CommandRouter {
    /// Who is asking.
    let session: SessionID
    let username: String

    /// The longest chat message, in characters: fixed by the protocol (SPEC.md §3, the
    /// exact `ERROR: Message too long...` line).
    static let maximumMessageLength = 1024
    /// The longest topic, in characters: a topic is shown to everyone who joins.
    static let maximumTopicLength = 256
    /// A `/ban` without minutes lasts this long.
    static let defaultBanMinutes = 60

    /// - Parameters:
    ///   - ignoring: the user's ignore list.
    ///   - lastPrivateSender: lower-cased name of the last user who sent them a private
    ///     message (for `/reply`).
    /// - Returns: the one thing to do (a reply to send, or a command for the hub log), or
    ///   `nil` when there is nothing (an empty message). One value, not a list: a chat line
    ///   passes here, and a list would be an allocation per line.
    func route(
        _ command: ChatCommand, hub: any HubLog, ignoring: inout IgnoreList, lastPrivateSender: String?
    ) -> SessionAction? {
        switch command {
        case .say(let text):
            return clean(text).map { .submit(.say(session, text: $0, isAction: false)) }
        case .me(let text):
            return clean(text).map { .submit(.say(session, text: $0, isAction: true)) }
        case .help(nil):
            return .send(ServerLine.help)
        case .help(let name?):
            guard let description = ChatCommand.description(of: name) else {
                return .send([UserError.noSuchCommand(name).line])
            }
            return .send(ServerLine.help(for: description))
        case .users:
            return .send(ServerLine.userList(hub.read(\.onlineUsers), caller: username))
        case .rooms:
            return .send(ServerLine.roomList(hub.read { $0.roomListings(for: session) }))
        case .who:
            return .send(hub.read { $0.memberLines(for: session) })
        case .join(let input):
            guard let room = RoomName(input) else { return .send([UserError.invalidRoomName.line]) }
            return .submit(.join(session, room: room))
        case .create(let input, let isPrivate):
            guard let room = RoomName(input) else { return .send([UserError.invalidRoomName.line]) }
            return .submit(.create(session, room: room, isPrivate: isPrivate))
        case .leave:
            return .submit(.leave(session))
        case .invite(let target):
            return .submit(.invite(session, target: target))
        case .kick(let target):
            return .submit(.kick(session, target: target))
        case .topic(let text):
            let topic = text.map { TextSanitizer.sanitize($0) } ?? ""
            guard !topic.isEmpty else { return .send(hub.read { $0.topicLine(for: session) }.map { [$0] } ?? []) }
            guard topic.count <= Self.maximumTopicLength else {
                return .send([UserError.topicTooLong(maximum: Self.maximumTopicLength).line])
            }
            return .submit(.setTopic(session, text: topic))
        case .privateMessage(let target, let text):
            return privateMessage(to: target, text)
        case .reply(let text):
            guard let target = lastPrivateSender else { return .send([UserError.noOneToReply.line]) }
            return privateMessage(to: target, text)
        case .ignore(nil):
            return .send(ServerLine.ignoreList(ignoring.sortedNames))
        case .ignore(let target?):
            guard let name = hub.read({ $0.onlineName(target) }) else {
                return .send([UserError.userNotOnline(target).line])
            }
            guard name.lowercased() != username.lowercased() else { return .send([UserError.notToYourself.line]) }
            ignoring.insert(name)
            return .send([ServerLine.nowIgnoring(name)])
        case .unignore(let target):
            guard let name = ignoring.remove(target) else { return .send([UserError.notIgnoring(target).line]) }
            return .send([ServerLine.noLongerIgnoring(name)])
        case .ban(let target, let minutes):
            return .submit(.ban(session, target: target, minutes: minutes ?? Self.defaultBanMinutes))
        case .unban(let target):
            return .submit(.unban(session, target: target))
        case .bans:
            let now = hub.now
            switch hub.read({ $0.banList(for: session, at: now) }) {
            case .success(let list): return .send(ServerLine.banList(list))
            case .failure(let error): return .send([error.line])
            }
        case .wall(let text):
            return clean(text).map { .submit(.wall(session, text: $0)) }
        case .away(nil):
            return .submit(.setAway(session, message: nil))
        case .away(let message?):
            return clean(message).map { .submit(.setAway(session, message: $0)) }
        case .drop(let name):
            guard let room = RoomName(name) else { return .send([UserError.invalidRoomName.line]) }
            return .submit(.dropRoom(session, room: room))
        case .quit, .nick, .token, .logout:
            return nil  // the state machine's: it holds the name, its rules and the token
        }
    }

    private func privateMessage(to target: String, _ text: String) -> SessionAction? {
        clean(text).map { .submit(.privateMessage(session, target: TextSanitizer.sanitize(target), text: $0)) }
    }

    /// The message made safe for other terminals, passed to `action`; an error line when it
    /// is too long; nothing when it is empty.
    private func clean(_ text: String) -> Clean {
        let clean = TextSanitizer.sanitize(text)
        guard clean.count <= Self.maximumMessageLength else {
            return .error(UserError.messageTooLong(maximum: Self.maximumMessageLength))
        }
        return clean.isEmpty ? .empty : .text(clean)
    }

    private enum Clean {
        case text(String)
        case error(UserError)
        case empty

        func map(_ action: (String) -> SessionAction) -> SessionAction? {
            switch self {
            case .text(let text): return action(text)
            case .error(let error): return .send([error.line])
            case .empty: return nil
            }
        }
    }
}
