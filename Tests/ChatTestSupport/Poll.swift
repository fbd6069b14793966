/// Checks `condition` every `interval` until it gives a value, for at most `timeout`.
///
/// For what a test can only look at, never be told of: another process's output or files
/// (redis-server, HAProxy, the SMTP fixture, tmux's screen), a folder filling with mails, the
/// kernel's socket queues, a server's counters. Anything that can signal (a line reaching a
/// ``TestClient``, a clock) is awaited instead.
/// - Returns: the value, or `nil` when time is up (the caller says what did not happen).
public func poll<T>(
    every interval: Duration = .milliseconds(10),
    timeout: Duration,
    until condition: () async throws -> T?
) async throws -> T? {
    let deadline = ContinuousClock.now + timeout
    while true {
        if let value = try await condition() { return value }
        guard ContinuousClock.now < deadline else { return nil }
        // The one pause every poll shares: what is polled sends no signal to wait on.
        try await Task.sleep(for: interval)
    }
}

/// ``poll(every:timeout:until:)`` for a condition without a value.
/// - Returns: whether it held in time.
public func poll(
    every interval: Duration = .milliseconds(10),
    timeout: Duration,
    until condition: () async throws -> Bool
) async throws -> Bool {
    try await poll(every: interval, timeout: timeout) { try await condition() ? true : nil } ?? false
}
