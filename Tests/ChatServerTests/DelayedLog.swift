import ChatCore
import NIOConcurrencyHelpers

@testable import ChatHub
@testable import ChatServer

/// A hub log that holds every command until the test lets it through, the way a log
/// shared by several nodes answers after a round trip: the real ``HubState`` applies them,
/// in submission order, when ``deliver()`` is called.
final class DelayedLog: HubLog {
    private struct Locked {
        var state: HubState
        var pending: [HubCommand] = []
        var now: LogTime
    }

    private let locked: NIOLockedValueBox<Locked>

    init(configuration: HubState.Configuration = .init(historySize: 10, maxConnectionsPerIP: 1)) {
        locked = NIOLockedValueBox(
            Locked(state: HubState(configuration: configuration), now: LogTime(milliseconds: 1_700_000_000_000)))
    }

    func submit(_ command: HubCommand) {
        locked.withLockedValue { $0.pending.append(command) }
    }

    func read<T>(_ body: (HubState) -> T) -> T {
        locked.withLockedValue { body($0.state) }
    }

    var now: LogTime { locked.withLockedValue { $0.now } }

    var pendingCount: Int { locked.withLockedValue { $0.pending.count } }

    /// Applies every held command, in order.
    /// - Returns: their effects.
    func deliver() -> [HubEffect] {
        locked.withLockedValue { locked in
            let commands = locked.pending
            locked.pending.removeAll()
            return commands.flatMap { locked.state.apply($0, at: locked.now) }
        }
    }
}
