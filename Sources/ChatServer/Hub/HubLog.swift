import ChatCore

/// Puts ``HubCommand``s in one order and applies them to the hub state.
///
/// Submitting never blocks the caller's event loop: what a command causes, answers
/// included, reaches the sessions as effects through their loop shards, now (``LocalLog``)
/// or after a round trip (a log shared by several nodes).
protocol HubLog: Sendable {
    /// Orders and applies a command.
    func submit(_ command: HubCommand)

    /// Reads the state as it is now (replica reads: no order needed).
    func read<T>(_ body: (HubState) -> T) -> T

    /// The time commands are stamped with now: what reads compare with.
    var now: LogTime { get }
}
