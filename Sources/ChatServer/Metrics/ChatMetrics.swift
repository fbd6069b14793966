import ChatHub
import CoreMetrics

/// What the server counts, for `GET /metrics`: made once per server through swift-metrics
/// from one factory (Prometheus's, over the server's own registry, so several servers in
/// one process keep apart), and shared by every connection.
///
/// Counters move where things happen; the figures that are state (users online, rooms,
/// bans, queued lines) are read from the hub when a scrape asks (``refresh(from:)``), so
/// the hot paths pay nothing for them. Names follow Prometheus's conventions: counters end
/// in `_total`, every name starts with `chat_`.
final class ChatMetrics: DeliveryCounting {
    private let logins: Counter
    private let mailsSent: Counter
    private let mailsFailed: Counter
    private let codesThrottled: Counter
    private let messages: Counter
    private let deliveries: Counter
    private let privateMessages: Counter
    private let slowConsumerDisconnects: Counter
    private let floodDisconnects: Counter
    private let loginFailures: [LoginFailure: Counter]
    private let refusals: [ConnectionRefusal: Counter]
    private let openConnections: [String: Meter]
    private let usersOnline: Meter
    private let rooms: Meter
    private let bansActive: Meter
    private let queuedLines: [Meter]

    /// - Parameters:
    ///   - listeners: the listeners' names (`tcp`, `tls`), one open-connections gauge each.
    ///   - eventLoops: how many loops (one queued-lines gauge each).
    init(factory: any MetricsFactory, listeners: [String], eventLoops: Int) {
        func counter(_ name: String, _ dimensions: [(String, String)] = []) -> Counter {
            Counter(label: name, dimensions: dimensions, factory: factory)
        }
        func gauge(_ name: String, _ dimensions: [(String, String)] = []) -> Meter {
            Meter(label: name, dimensions: dimensions, factory: factory)
        }
        logins = counter("chat_logins_total")
        mailsSent = counter("chat_otp_mails_total", [("result", "sent")])
        mailsFailed = counter("chat_otp_mails_total", [("result", "failed")])
        codesThrottled = counter("chat_otp_requests_throttled_total")
        messages = counter("chat_messages_total")
        deliveries = counter("chat_deliveries_total")
        privateMessages = counter("chat_private_messages_total")
        slowConsumerDisconnects = counter("chat_disconnects_total", [("reason", "slow_consumer")])
        floodDisconnects = counter("chat_disconnects_total", [("reason", "flood")])
        // Every label value exists from the start, at 0: a rate over a series that appears
        // only on its first event misses that event.
        loginFailures = Dictionary(
            uniqueKeysWithValues: LoginFailure.allCases.map {
                ($0, counter("chat_login_failures_total", [("reason", $0.rawValue)]))
            })
        refusals = Dictionary(
            uniqueKeysWithValues: ConnectionRefusal.allCases.map {
                ($0, counter("chat_connections_refused_total", [("reason", $0.rawValue)]))
            })
        openConnections = Dictionary(
            uniqueKeysWithValues: listeners.map { ($0, gauge("chat_connections_open", [("listener", $0)])) })
        usersOnline = gauge("chat_users_online")
        rooms = gauge("chat_rooms")
        bansActive = gauge("chat_bans_active")
        queuedLines = (0..<eventLoops).map { gauge("chat_event_loop_queued_lines", [("loop", "\($0)")]) }
        for meter in [usersOnline, rooms, bansActive] + queuedLines + Array(openConnections.values) { meter.set(0) }
    }

    /// A line a user sent to their room (a chat line or a `/me` action).
    func messageSent() {
        messages.increment()
    }

    /// What one drain of a loop's shard wrote: room lines to their recipients, private
    /// messages to theirs. Counted per drain, not per write: one atomic add for a burst.
    package func delivered(roomLines: Int, privateMessages count: Int) {
        if roomLines > 0 { deliveries.increment(by: Int64(roomLines)) }
        if count > 0 { privateMessages.increment(by: Int64(count)) }
    }

    func mailHandedOver(_ succeeded: Bool) {
        (succeeded ? mailsSent : mailsFailed).increment()
    }

    func disconnectedSlowConsumer() {
        slowConsumerDisconnects.increment()
    }

    func disconnectedFlooding() {
        floodDisconnects.increment()
    }

    func loginFailed(_ reason: LoginFailure) {
        loginFailures[reason]?.increment()
    }

    func refused(_ reason: ConnectionRefusal) {
        refusals[reason]?.increment()
    }

    func connectionOpened(on listener: String) {
        openConnections[listener]?.increment()
    }

    func connectionClosed(on listener: String) {
        openConnections[listener]?.decrement()
    }

    /// Counts what a session reported.
    func record(_ event: SessionEvent) {
        switch event {
        case .refused(let reason): refused(reason)
        case .loggedIn: logins.increment()
        case .loginFailed(let reason): loginFailed(reason)
        case .codeThrottled: codesThrottled.increment()
        case .disconnectedFlooding: disconnectedFlooding()
        case .disconnectedSlowConsumer: disconnectedSlowConsumer()
        }
    }

    /// Sets the gauges that are state, from the hub as it is now (before a scrape).
    func refresh(from log: any NodeLog) {
        let now = log.now
        let (users, roomCount, bans) = log.read { ($0.sessions.count, $0.rooms.count, $0.activeBanCount(at: now)) }
        usersOnline.set(users)
        rooms.set(roomCount)
        bansActive.set(bans)
        for (meter, shard) in zip(queuedLines, log.shards) { meter.set(shard.queuedLines) }
    }
}
