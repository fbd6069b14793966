import ChatHub

/// Every decision a cluster node's hub log makes, with no I/O: which connection an append
/// goes out on or why it is refused, whether an outage is news, which appends are in doubt
/// and when they are settled, whether the node has gone deaf, whether a read must first
/// check for trimmed entries, whether others' heartbeats may be judged, how a fresh log is
/// begun. ``RedisLog`` and its drivers hold it under one lock, feed it what happened and
/// carry out what it answers.
///
/// Generic over the clock (as valkey-swift's `ValkeyClusterClientStateMachine` is), so tests
/// drive it with a manual clock instead of waiting out heartbeats and node timeouts; and
/// over the connection, which it only holds and hands back.
package struct ClusterNodeMachine<Connection: AnyObject & Sendable, Clock: _Concurrency.Clock>: Sendable
where Clock.Duration == Duration {
    struct Timing: Sendable {
        /// How often the node refreshes its heartbeat key.
        var heartbeat: Duration
        /// How long a heartbeat key lives (`CLUSTER_NODE_TIMEOUT_SECONDS`).
        var nodeTimeout: Duration
    }

    let clock: Clock
    let timing: Timing

    private(set) var writer: Connection?
    private(set) var reader: Connection?
    private(set) var isStopping = false
    /// Whether the loss of Redis was logged: once per outage, not once per command.
    private var outageLogged = false
    /// Whether what the reader read waits for the replicas longer than it may
    /// (`CLUSTER_REDIS_WAIT_TIMEOUT_MS`): until they have it, commands are refused as in an
    /// outage rather than taken into a log that a failover might lose.
    private(set) var isWaitingForReplicas = false
    /// The node's number once it joined (its appends carry it).
    private(set) var node: NodeNumber = 0
    /// What was appended and not yet read back.
    private var ledger = AppendLedger()
    /// Releases that could not be appended: sent again once Redis is back (a release is
    /// idempotent), so no slot or name stays taken by a connection that is gone.
    private var releasesToResend: [SessionID] = []
    /// Others' heartbeats are judged only after a full node timeout of this node's own
    /// connection to Redis: after an outage, they need that long to refresh theirs.
    private var judgeNotBefore: Clock.Instant
    /// The epoch of the log this node's state was built from (``ClusterKeys/epoch``); `nil`
    /// while it starts a fresh log.
    private(set) var epoch: String?
    /// While this node starts a fresh log: the epoch that was lost, and this node's
    /// connections to announce there (taken once from the old state).
    private var lostEpoch: String?
    private var announcements: [Reannouncement]?
    /// Since when a heartbeat entry Redis has taken (it answered the append) has not come
    /// back to this node's reader; `nil` when every one has.
    private var unreadBeatSince: Clock.Instant?
    /// When the last heartbeat refresh that succeeded was sent. While refreshes keep coming
    /// the log is not trimmed past what the node reported applied; once one is late, the
    /// key may have expired, and each read first checks that nothing it has not read was
    /// trimmed.
    private var lastRefresh: Clock.Instant
    /// Set when a refresh succeeded long after the one before (it waited out a partition):
    /// the key may have expired in between. The reader checks once, then clears it.
    private var mayHaveMissedEntries = false
    /// The id of the last entry applied: where reading resumes.
    private(set) var lastApplied = StreamID.zero
    /// How many entries the log had taken up to the last one applied (`nil` when a snapshot
    /// did not say): the lag in entries is Redis's count of entries added minus this.
    private(set) var position: Int64? = 0
    /// How many records (appends, ``LogRecord``) this node has applied since it started:
    /// how fast the log grows, for the snapshot schedule.
    private(set) var recordsApplied: Int64 = 0
    /// When this node last started on a fresh log (begun by it or by another node).
    private var freshLogSince: Clock.Instant?

    init(clock: Clock, timing: Timing) {
        self.clock = clock
        self.timing = timing
        judgeNotBefore = clock.now
        lastRefresh = clock.now
    }

    // MARK: Joining and connections

    /// The node took its number and the epoch of the log it joins.
    mutating func joined(asNode node: NodeNumber, epoch: String) {
        self.node = node
        self.epoch = epoch
    }

    /// Both connections are up and the log so far is applied: liveness starts from now.
    mutating func started(writer: Connection, reader: Connection) {
        self.writer = writer
        self.reader = reader
        unreadBeatSince = nil
        lastRefresh = clock.now
    }

    /// The writer's connection ended: appends are refused until ``writerConnected(_:tail:)``.
    mutating func writerLost() {
        writer = nil
    }

    /// The writer is connected again and the stream's last entry is `tail`: what was sent
    /// before is settled once the reader has applied up to it, and others are judged only
    /// after a node timeout.
    /// - Returns: the releases to append again, or `nil` when the node is stopping (the
    ///   connection is then the caller's to close).
    mutating func writerConnected(_ writer: Connection, tail: StreamID) -> [SessionID]? {
        guard !isStopping else { return nil }
        self.writer = writer
        outageLogged = false
        ledger.reconnected(tail: tail)
        judgeNotBefore = clock.now.advanced(by: timing.nodeTimeout)
        unreadBeatSince = nil
        defer { releasesToResend = [] }
        return releasesToResend
    }

    /// - Returns: whether the reader is kept (not when the node is stopping).
    mutating func readerConnected(_ reader: Connection) -> Bool {
        guard !isStopping else { return false }
        self.reader = reader
        return true
    }

    mutating func readerLost() {
        reader = nil
    }

    /// The node leaves: no connection is kept or made from now on.
    /// - Returns: the connections to close.
    mutating func stop() -> (writer: Connection?, reader: Connection?) {
        isStopping = true
        return (writer, reader)
    }

    // MARK: Appending

    enum SubmitAction {
        /// Append on this connection, tagged with the node and the sequence number.
        case append(Connection, sequence: UInt64, node: NodeNumber)
        /// Not in the log: refuse it (and log the outage, for this reason, when it is news).
        case refuse(logOutage: String?)
    }

    mutating func submit(_ command: HubCommand) -> SubmitAction {
        guard let writer else { return .refuse(logOutage: outageBegins() ? "no connection to Redis" : nil) }
        guard !isWaitingForReplicas else {
            return .refuse(logOutage: outageBegins() ? "the log's entries do not reach the replicas" : nil)
        }
        return .append(writer, sequence: ledger.record(command), node: node)
    }

    /// The reader's entries have waited for the replicas longer than they may: commands
    /// are refused until ``replicasCaughtUp()``.
    /// - Returns: whether the outage is news (to log once).
    mutating func replicasFellShort() -> Bool {
        isWaitingForReplicas = true
        return outageBegins()
    }

    /// The replicas have what was read: commands are taken again.
    /// - Returns: the releases to append again (kept while commands were refused).
    mutating func replicasCaughtUp() -> [SessionID] {
        guard isWaitingForReplicas else { return [] }
        isWaitingForReplicas = false
        guard writer != nil else { return [] }
        outageLogged = false
        defer { releasesToResend = [] }
        return releasesToResend
    }

    /// An append failed. An error reply means it is not in the stream: it is refused. A
    /// lost connection leaves it in doubt, settled by ``settle()`` once the writer is back.
    /// - Returns: whether the outage is news, and the command to refuse, if any.
    mutating func appendFailed(
        sequence: UInt64, rejectedByRedis: Bool
    ) -> (logOutage: Bool, refused: HubCommand?) {
        (outageBegins(), rejectedByRedis ? ledger.reject(sequence) : nil)
    }

    /// - Returns: `true` the first time in an outage (and never while stopping).
    mutating func outageBegins() -> Bool {
        guard !isStopping, !outageLogged else { return false }
        outageLogged = true
        return true
    }

    /// A release that is not in the log, of a connection the state still holds (or that a
    /// fresh log will announce): kept, to append again once the writer is back.
    mutating func keepRelease(_ id: SessionID, isHeld: Bool) {
        if isHeld || announcements != nil { releasesToResend.append(id) }
    }

    // MARK: Applying

    /// Whether entries read in `epoch` may be applied (the node's log is still that one).
    func isCurrent(epoch: String) -> Bool {
        self.epoch == epoch
    }

    /// A batch of `count` entries, holding `records` records, up to `last` was applied.
    /// Reading this node's own beat back means every beat Redis took before it came back too
    /// (the stream's order).
    mutating func applied(count: Int, records: Int, upTo last: StreamID, ownBeatCameBack: Bool) {
        lastApplied = last
        position = position.map { $0 + Int64(count) }
        recordsApplied += Int64(records)
        if ownBeatCameBack { unreadBeatSince = nil }
    }

    /// Whether any of this node's appends wait to be read back (confirming costs a look at
    /// every entry's tag, skipped when none does).
    var awaitsOwnAppends: Bool { ledger.unconfirmedCount > 0 }

    /// An entry carrying this tag was read: if it is one of this node's appends, it is off
    /// the ledger.
    mutating func confirm(tag: [UInt8]) {
        if let sequence = AppendLedger.sequence(inTag: tag, ofNode: node) { ledger.confirm(sequence) }
    }

    /// Once the reader has applied everything up to the writer's reconnect, the appends in
    /// doubt that never came back: releases are to be appended again, the rest refused.
    mutating func settle() -> [HubCommand] {
        ledger.settle(applied: lastApplied)
    }

    /// A snapshot replaced the state.
    mutating func loaded(upTo: StreamID, position: Int64?) {
        lastApplied = upTo
        self.position = position
    }

    /// What this node sent and did not read back went with its state (a lost log, or a
    /// start again from the snapshot).
    /// - Returns: those commands, in the order sent.
    mutating func abandonAppends() -> [HubCommand] {
        ledger.abandonAll()
    }

    // MARK: Liveness

    /// Whether this node's heartbeat key may have expired (a beat was missed), so the log
    /// may be trimmed past what it has read: a read's entries wait for a look first.
    func needsTrimCheck() -> Bool {
        mayHaveMissedEntries || lastRefresh.duration(to: clock.now) > timing.heartbeat * 3 / 2
    }

    /// A read found no gap: a partition's doubt is cleared.
    mutating func trimChecked() {
        mayHaveMissedEntries = false
    }

    struct Beat {
        var writer: Connection
        /// Whether other nodes' keys may be judged yet.
        var judgesOthers: Bool
        var epoch: String?
        var applied: StreamID
        var sentAt: Clock.Instant
    }

    /// A heartbeat is due: what it is sent with, or `nil` without a writer.
    func beat() -> Beat? {
        writer.map {
            Beat(
                writer: $0, judgesOthers: clock.now >= judgeNotBefore, epoch: epoch, applied: lastApplied,
                sentAt: clock.now)
        }
    }

    /// Redis answered a heartbeat sent at `sentAt`.
    /// - Parameters:
    ///   - refreshed: the key's refresh succeeded.
    ///   - beatTaken: the beat entry was appended (it is to come back to the reader).
    mutating func beatAnswered(sentAt: Clock.Instant, refreshed: Bool, beatTaken: Bool) {
        if refreshed {
            if lastRefresh.duration(to: clock.now) > timing.nodeTimeout { mayHaveMissedEntries = true }
            lastRefresh = sentAt
        }
        // Counted from Redis's answer, not from the send: after a partition the beats sent
        // into it are taken late, and come back at once.
        if beatTaken { unreadBeatSince = unreadBeatSince ?? clock.now }
    }

    /// Whether a beat Redis took has not come back for a node timeout: the node's reading is
    /// stuck where no deadline sees it, and both connections must start again (the clock
    /// starts over then). A node holding what it read until the replicas have it is not
    /// stuck: its clock starts over with the first beat after the replicas caught up.
    mutating func isDeaf() -> Bool {
        guard !isWaitingForReplicas else {
            unreadBeatSince = nil
            return false
        }
        guard let since = unreadBeatSince, since.duration(to: clock.now) > timing.nodeTimeout else { return false }
        unreadBeatSince = nil
        return true
    }

    // MARK: A fresh log

    /// After the writer reconnected, whether Redis still holds the log this node's state
    /// was built from: not when the epoch key is gone or another, or when the log ends
    /// before what was applied (Redis restarted without its data, or from an older file).
    /// - Parameters:
    ///   - epoch: the epoch key's value now.
    ///   - tail: the id of the stream's last entry now (`.zero` for none).
    /// - Returns: why the log is lost, or `nil` when it is the node's.
    func lostLog(epoch found: String?, tail: StreamID) -> String? {
        if found == nil { return "the epoch key is gone" }
        if found != epoch { return "the epoch changed" }
        if tail < lastApplied { return "the log ends before \(lastApplied)" }
        return nil
    }

    /// Whether a fresh log is being begun (its announcements were taken and not yet made).
    var isStartingFreshLog: Bool { announcements != nil }

    /// Redis lost the log this node's state was built from. The first call begins a fresh
    /// one: `takeAnnouncements` empties the state and gives this node's connections, every
    /// append in doubt is abandoned. A call after a half-done attempt resumes it with the
    /// same announcements.
    /// - Returns: what to announce, the epoch that was lost, and the appends to refuse.
    mutating func beginFreshLog(
        takeAnnouncements: () -> [Reannouncement]
    ) -> (announced: [Reannouncement], lostEpoch: String?, abandoned: [HubCommand]) {
        if let announcements { return (announcements, lostEpoch, []) }
        let announced = takeAnnouncements()
        lastApplied = .zero
        position = 0
        lostEpoch = epoch
        epoch = nil
        announcements = announced
        return (announced, lostEpoch, ledger.abandonAll())
    }

    /// The key refresh of a fresh log's start went through.
    mutating func refreshed() {
        lastRefresh = clock.now
    }

    /// The fresh log is in force and this node's connections are announced in it.
    /// - Returns: the reader, which read the lost log and must reconnect.
    mutating func freshLogStarted(epoch: String) -> Connection? {
        self.epoch = epoch
        lostEpoch = nil
        announcements = nil
        freshLogSince = clock.now
        return reader
    }

    /// Whether the log may be trimmed behind a snapshot. Not while this node has been on a
    /// fresh log for less than twice the node timeout: the other nodes adopt that log when
    /// they next reach Redis, and until then their marks of what they applied are not in it
    /// to hold the trimming back. One that found the log's start trimmed would have to close
    /// its users' connections, for it could not tell what it missed. A node that is not cut
    /// off finds the fresh log at its next heartbeat; twice the node timeout leaves room for
    /// one that was following a failover meanwhile. One cut off for longer fares as any node
    /// cut off for longer than the log keeps.
    var mayTrim: Bool {
        guard let freshLogSince else { return true }
        return freshLogSince.duration(to: clock.now) >= timing.nodeTimeout * 2
    }
}
