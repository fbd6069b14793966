import ChatCore
import ChatHub
import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The hub log of a single node that remembers (`DATA_DIR`): every command is appended to
/// a journal before it is applied, so a restart, or a crash, replays it. Records are framed
/// by ``JournalFormat``, the entry coded as in the Redis log: one codec, two stores.
///
/// With `DATA_FSYNC=interval` a command is written (one `write`, into the kernel's cache,
/// which a crash of the process does not lose) and applied on the caller's own thread, under
/// the lock the replica applies every command under, as a node without `DATA_DIR` applies
/// it; the journal is synced once a second, off the event loops. With `always` nothing may
/// go out before its record is on disk: commands from any event loop are stamped and framed
/// under a short lock and, at the end of the loop's tick, one queue off the event loops
/// writes what gathered meanwhile in one `write` and one `fsync` (a group commit), then
/// applies the batch in order. Its effects, the sender's echo included, go out only after
/// that.
///
/// When the disk refuses a write (full, read-only), the commands are refused with the
/// outage line a cluster node gives without Redis, the file is cut back to its last whole
/// record, and writing resumes with the next command. Start-up (`+Replay`) loads the
/// newest snapshot and replays the journal after it; snapshots (`+Snapshots`) bound what a
/// start replays and what the folder holds.
package final class JournalLog: NodeLog {
    package let replica: HubReplica
    let settings: JournalSettings
    let configuration: HubState.Configuration
    let logger: Logger
    let metrics: JournalMetrics?
    let clock: @Sendable () -> LogTime
    /// Writes, syncs, applies (`always`), and begins segments, one thing at a time.
    let queue = DispatchQueue(label: "chat-server.journal")

    /// Stamped and framed, not yet written (`always`).
    struct Pending {
        var bytes: [UInt8] = []
        var records = 0
        var commands: [(command: HubCommand, time: LogTime)] = []
        var flushScheduled = false
        var lastTime = LogTime(milliseconds: 0)
    }
    let pending = NIOLockedValueBox(Pending())

    /// The open files; written on ``queue`` (`always`) or under the replica's lock
    /// (`interval`), segments begun on the queue with the replica's lock held.
    struct Disk {
        var lock: Int32 = -1
        /// The segment being appended to, its path, and its length after its last whole record.
        var journal: Int32 = -1
        var path = ""
        var size = 0
        /// Records in the journal, every segment counted: the position of the next one.
        var position: Int64 = 0
        var unsynced = false
        /// Writing fails (the warning is logged once per episode).
        var failing = false
    }
    let disk = NIOLockedValueBox(Disk())
    /// Snapshots cannot be written (their error is logged once per episode).
    let snapshotsFailing = NIOLockedValueBox(false)
    /// Finished by ``stop()``: the background work ends.
    let stopping = AsyncStream.makeStream(of: Void.self)

    package init(
        eventLoops: [any EventLoop], configuration: HubState.Configuration, settings: JournalSettings,
        maxSendQueueBytes: Int = .max, metrics: (any DeliveryCounting)? = nil, journalMetrics: JournalMetrics? = nil,
        logger: Logger, clock: @escaping @Sendable () -> LogTime = LocalLog.wallClock
    ) {
        self.replica = .ofNodeOnItsOwn(
            eventLoops: eventLoops, configuration: configuration, maxSendQueueBytes: maxSendQueueBytes,
            metrics: metrics)
        self.configuration = replica.read(\.configuration)
        self.settings = settings
        self.logger = logger
        self.metrics = journalMetrics
        self.clock = clock
    }

    // MARK: HubLog

    package func submit(_ command: HubCommand) {
        switch settings.fsync {
        case .interval: writeAndApply(command)
        case .always: gather(command)
        }
    }

    package var now: LogTime {
        let last =
            switch settings.fsync {
            case .interval: replica.lastTime
            case .always: pending.withLockedValue { $0.lastTime }
            }
        return LogTime(milliseconds: max(clock().milliseconds, last.milliseconds))
    }

    /// `interval`: the record is written and the command applied in one step, under the
    /// replica's lock, so the journal holds the commands in the order they were applied.
    private func writeAndApply(_ command: HubCommand) {
        let entry = LogEntryCoding.encode(command)
        var refused = false
        replica.apply(command) { last in
            // Log time never goes backwards, whatever the wall clock does.
            let time = LogTime(milliseconds: max(clock().milliseconds, last.milliseconds))
            // A shutdown is this process's, not the chat's: the next run starts open.
            if case .shutdown = command { return time }
            var bytes: [UInt8] = []
            JournalFormat.append(Self.record(entry, at: time), to: &bytes)
            if write(bytes, records: 1) || Self.keepsInMemory(command) { return time }
            refused = true
            return nil
        }
        if refused { refuse([command]) }
    }

    /// `always`: stamped and framed now, written, synced and applied on the queue with
    /// whatever else gathered meanwhile.
    private func gather(_ command: HubCommand) {
        let entry = LogEntryCoding.encode(command)
        let schedule = pending.withLockedValue { pending -> Bool in
            // Log time never goes backwards, whatever the wall clock does.
            let time = LogTime(milliseconds: max(clock().milliseconds, pending.lastTime.milliseconds))
            pending.lastTime = time
            pending.commands.append((command, time))
            // A shutdown is this process's, not the chat's: the next run starts open.
            if case .shutdown = command {
            } else {
                JournalFormat.append(Self.record(entry, at: time), to: &pending.bytes)
                pending.records += 1
            }
            defer { pending.flushScheduled = true }
            return !pending.flushScheduled
        }
        guard schedule else { return }
        if let loop = replica.currentEventLoop {
            // On a loop, the batch closes at the end of its tick: the lines the loop reads
            // in this tick (and what the other loops submit meanwhile) share one write, one
            // `fsync` and one drain per shard, as a tick's lines share a drain in memory.
            // A task queued on its own loop wakes nothing.
            loop.execute { self.queue.async { self.flush() } }
        } else {
            queue.async { self.flush() }
        }
    }

    /// A record's payload: the entry's log time (milliseconds, little-endian), then the entry.
    static func record(_ entry: [UInt8], at time: LogTime) -> [UInt8] {
        let milliseconds = UInt64(bitPattern: time.milliseconds)
        return (0..<8).map { UInt8(truncatingIfNeeded: milliseconds >> (8 * $0)) } + entry
    }

    /// Reads a record's payload back.
    static func entry(ofRecord payload: ArraySlice<UInt8>) throws -> (command: HubCommand, time: LogTime) {
        guard payload.count > 8 else { throw LogEntryCoding.DecodingError.truncated }
        let start = payload.startIndex
        let milliseconds = (0..<8).reduce(UInt64(0)) { $0 | UInt64(payload[start + $1]) << (8 * $1) }
        let command = try LogEntryCoding.decode(Array(payload[(start + 8)...]))
        return (command, LogTime(milliseconds: Int64(bitPattern: milliseconds)))
    }

    // MARK: Writing

    /// Writes what gathered since the last call, then applies it (on ``queue``).
    func flush() {
        let (bytes, records, commands) = pending.withLockedValue { pending in
            defer {
                pending.bytes.removeAll(keepingCapacity: true)
                pending.commands.removeAll(keepingCapacity: true)
                pending.records = 0
                pending.flushScheduled = false
            }
            return (pending.bytes, pending.records, pending.commands)
        }
        guard !commands.isEmpty else { return }
        if bytes.isEmpty || write(bytes, records: records) {
            replica.apply(commands)
        } else {
            replica.apply(commands.filter { Self.keepsInMemory($0.command) })
            refuse(commands.map(\.command))
        }
    }

    /// - Returns: whether the bytes are in the journal (and on disk, with `always`).
    private func write(_ bytes: [UInt8], records: Int) -> Bool {
        let fsync = settings.fsync
        let logger = self.logger
        let metrics = self.metrics
        return disk.withLockedValue { disk in
            do {
                try JournalFiles.write(bytes, to: disk.journal, path: disk.path)
                if fsync == .always {
                    let started = ContinuousClock.now
                    try JournalFiles.sync(disk.journal, path: disk.path)
                    metrics?.synced(in: ContinuousClock.now - started)
                } else {
                    disk.unsynced = true
                }
                disk.size += bytes.count
                disk.position += Int64(records)
                metrics?.wrote(bytes: bytes.count)
                if disk.failing {
                    disk.failing = false
                    logger.notice("Writing the journal again", metadata: ["path": "\(disk.path)"])
                }
                return true
            } catch {
                // Never half a record in the middle: the next write goes after the last whole one.
                try? JournalFiles.truncate(disk.path, to: disk.size)
                metrics?.writeFailed()
                if !disk.failing {
                    disk.failing = true
                    logger.warning(
                        "Cannot write the journal; commands that change the chat are refused until it can",
                        metadata: ["error": "\(error)"])
                }
                return false
            }
        }
    }

    /// What nobody waits for and changes nothing a restart keeps (a connection's release, a
    /// sweep, the shutdown) is applied even when it cannot be journaled: a restart releases
    /// every connection of the process before.
    static func keepsInMemory(_ command: HubCommand) -> Bool {
        switch command {
        case .release, .sweep, .shutdown, .nodeDown: true
        default: false
        }
    }

    /// Commands that could not be journaled: their senders are told, as a cluster node
    /// without Redis tells them (those ``keepsInMemory(_:)`` were applied, and are skipped).
    private func refuse(_ commands: [HubCommand]) {
        let refusals = commands.compactMap { command -> HubEffect? in
            guard !Self.keepsInMemory(command) else { return nil }
            return command.refusalWhileUnavailable { id in self.replica.read { $0.sessions[id]?.address } }
        }
        replica.deliver(refusals)
    }

    /// Syncs what `interval` left unsynced (on ``queue``, which alone closes the
    /// journal's descriptor). The `fsync` is made without the lock the event loops write
    /// under, so they go on writing while the disk flushes.
    func syncIfNeeded() {
        let open = disk.withLockedValue { disk -> (journal: Int32, path: String)? in
            guard disk.unsynced, disk.journal >= 0 else { return nil }
            disk.unsynced = false
            return (disk.journal, disk.path)
        }
        guard let open else { return }
        do {
            let started = ContinuousClock.now
            try JournalFiles.sync(open.journal, path: open.path)
            metrics?.synced(in: ContinuousClock.now - started)
        } catch {
            disk.withLockedValue { $0.unsynced = true }
            logger.warning("Cannot sync the journal", metadata: ["error": "\(error)"])
        }
    }

    /// Writes and syncs what is left, and lets the folder go.
    package func stop() async {
        stopping.continuation.finish()
        queue.sync {
            flush()
            syncIfNeeded()
            disk.withLockedValue { disk in
                if disk.journal >= 0 { close(disk.journal) }
                if disk.lock >= 0 { close(disk.lock) }
                disk.journal = -1
                disk.lock = -1
            }
        }
    }

    // MARK: Shutdown

    package func beginShutdown(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let (allClosed, began) = replica.awaitAllClosed(on: eventLoop) { $0.isShuttingDown }
        if began { submit(.shutdown) }
        return allClosed
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
