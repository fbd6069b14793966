import ChatCore
import ChatHub
import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The hub log of a single node that remembers (`DATA_DIR`): every command is appended to
/// a journal file before it is applied, so a restart, or a crash, replays it.
///
/// Commands submitted from any event loop are stamped and framed (``JournalFormat``, the
/// entry coded as in the Redis log: one codec, two stores) under a short lock, and one
/// queue off the event loops writes what gathered meanwhile in one `write` and, with
/// `DATA_FSYNC=always`, one `fsync` (a group commit), then applies the batch in order. Its
/// effects, the sender's echo included, go out only after that. With `interval` the
/// journal is synced once a second.
///
/// When the disk refuses a write (full, read-only), the batch's commands are refused with
/// the outage line a cluster node gives without Redis, the file is cut back to its last
/// whole record, and writing resumes with the next command. Start-up replays the journal,
/// cutting a torn tail off, and releases every connection of the process before, as a
/// cluster releases a dead node's.
package final class JournalLog: NodeLog {
    package let replica: HubReplica
    let settings: JournalSettings
    let logger: Logger
    private let clock: @Sendable () -> LogTime
    private let path: String
    private let queue = DispatchQueue(label: "chat-server.journal")

    /// Stamped and framed, not yet written.
    private struct Pending {
        var bytes: [UInt8] = []
        var commands: [(command: HubCommand, time: LogTime)] = []
        var flushScheduled = false
        var lastTime = LogTime(milliseconds: 0)
    }
    private let pending = NIOLockedValueBox(Pending())

    /// The open files; touched on ``queue`` (and at start and stop, when nothing else runs).
    private struct Disk {
        var journal: Int32 = -1
        var lock: Int32 = -1
        /// The journal's length after its last whole record.
        var size = 0
        var unsynced = false
        /// Writing fails (the warning is logged once per episode).
        var failing = false
    }
    private let disk = NIOLockedValueBox(Disk())
    private let stopped = NIOLockedValueBox(false)

    package init(
        eventLoops: [any EventLoop], configuration: HubState.Configuration, settings: JournalSettings,
        maxSendQueueBytes: Int = .max, metrics: (any DeliveryCounting)? = nil, logger: Logger,
        clock: @escaping @Sendable () -> LogTime = LocalLog.wallClock
    ) {
        precondition(!eventLoops.isEmpty && eventLoops.count <= 64, "1 to 64 event loops")
        var configuration = configuration
        configuration.shardCount = eventLoops.count
        self.replica = HubReplica(
            eventLoops: eventLoops, configuration: configuration, maxSendQueueBytes: maxSendQueueBytes,
            metrics: metrics)
        self.settings = settings
        self.logger = logger
        self.clock = clock
        self.path = JournalFiles.journal(in: settings.directory)
    }

    // MARK: HubLog

    package func submit(_ command: HubCommand) {
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
            }
            defer { pending.flushScheduled = true }
            return !pending.flushScheduled
        }
        if schedule { queue.async { self.flush() } }
    }

    package var now: LogTime {
        let last = pending.withLockedValue { $0.lastTime }
        return LogTime(milliseconds: max(clock().milliseconds, last.milliseconds))
    }

    /// A record's payload: the entry's log time (milliseconds, little-endian), then the entry.
    static func record(_ entry: [UInt8], at time: LogTime) -> [UInt8] {
        let milliseconds = UInt64(bitPattern: time.milliseconds)
        return (0..<8).map { UInt8(truncatingIfNeeded: milliseconds >> (8 * $0)) } + entry
    }

    /// Reads a record's payload back.
    static func entry(ofRecord payload: ArraySlice<UInt8>) throws -> (command: HubCommand, time: LogTime) {
        guard payload.count > 8 else {
            throw JournalError.unreadable(path: "", reason: "a record of \(payload.count) bytes")
        }
        let start = payload.startIndex
        let milliseconds = (0..<8).reduce(UInt64(0)) { $0 | UInt64(payload[start + $1]) << (8 * $1) }
        let command = try LogEntryCoding.decode(Array(payload[(start + 8)...]))
        return (command, LogTime(milliseconds: Int64(bitPattern: milliseconds)))
    }

    // MARK: Writing

    /// Writes what gathered since the last call, then applies it (on ``queue``).
    private func flush() {
        let (bytes, commands) = pending.withLockedValue { pending in
            defer {
                pending.bytes.removeAll(keepingCapacity: true)
                pending.commands.removeAll(keepingCapacity: true)
                pending.flushScheduled = false
            }
            return (pending.bytes, pending.commands)
        }
        guard !commands.isEmpty else { return }
        if bytes.isEmpty || write(bytes) {
            replica.apply(commands)
        } else {
            refuse(commands)
        }
    }

    /// - Returns: whether the bytes are in the journal (and on disk, with `always`).
    private func write(_ bytes: [UInt8]) -> Bool {
        let path = self.path
        let fsync = settings.fsync
        let logger = self.logger
        return disk.withLockedValue { disk in
            do {
                try JournalFiles.write(bytes, to: disk.journal, path: path)
                if fsync == .always {
                    try JournalFiles.sync(disk.journal, path: path)
                } else {
                    disk.unsynced = true
                }
                disk.size += bytes.count
                if disk.failing {
                    disk.failing = false
                    logger.notice("Writing the journal again", metadata: ["path": "\(path)"])
                }
                return true
            } catch {
                // Never half a record in the middle: the next write goes after the last whole one.
                try? JournalFiles.truncate(path, to: disk.size)
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

    /// Commands that could not be journaled: their senders are told, as a cluster node
    /// without Redis tells them. What nobody waits for and changes nothing a restart keeps
    /// (a connection's release, a sweep, the shutdown) is applied all the same: a restart
    /// releases every connection of the process before.
    private func refuse(_ commands: [(command: HubCommand, time: LogTime)]) {
        var inMemory: [(command: HubCommand, time: LogTime)] = []
        var refusals: [HubEffect] = []
        for entry in commands {
            switch entry.command {
            case .release, .sweep, .shutdown, .nodeDown:
                inMemory.append(entry)
            default:
                let refusal = entry.command.refusalWhileUnavailable { id in
                    self.replica.read { $0.sessions[id]?.address }
                }
                if let refusal { refusals.append(refusal) }
            }
        }
        replica.apply(inMemory)
        replica.deliver(refusals)
    }

    // MARK: Starting and stopping

    /// Takes the folder, replays the journal, and releases the previous run's connections,
    /// before the node listens.
    package func start() async throws {
        let directory = settings.directory
        let lock = try JournalFiles.takeLock(of: directory)
        disk.withLockedValue { $0.lock = lock }
        let started = ContinuousClock.now
        let bytes = try JournalFiles.readAll(path) ?? []
        let reading: JournalFormat.Reading
        do {
            reading = try JournalFormat.read(bytes)
        } catch .newerFormat(let version) {
            throw JournalError.unreadable(path: path, reason: "it is of format \(version), this version reads 1")
        } catch {
            throw JournalError.unreadable(path: path, reason: "it does not start as a journal does")
        }
        var size = bytes.count
        switch reading.end {
        case .clean:
            break
        case .tornTail(let offset):
            if offset < bytes.count {
                logger.warning(
                    "The journal ends in a record cut short (a crash while writing it); it is cut off",
                    metadata: ["path": "\(path)", "offset": "\(offset)", "bytes_cut": "\(bytes.count - offset)"])
                try JournalFiles.truncate(path, to: offset)
            }
            size = offset
        case .damaged(let offset):
            throw JournalError.damaged(path: path, offset: offset)
        }
        var batch: [(command: HubCommand, time: LogTime)] = []
        for (index, record) in reading.records.enumerated() {
            do {
                batch.append(try Self.entry(ofRecord: bytes[record]))
            } catch {
                throw JournalError.unreadable(
                    path: path, reason: "record \(index + 1) (byte \(record.lowerBound)): \(error)")
            }
            if batch.count == 1024 {
                replica.apply(batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
        replica.apply(batch)
        let journal = try JournalFiles.openForAppending(path)
        if size == 0 {
            try JournalFiles.write(JournalFormat.header, to: journal, path: path)
            try JournalFiles.sync(journal, path: path)
            JournalFiles.syncFolder(directory)
            size = JournalFormat.header.count
        }
        disk.withLockedValue {
            $0.journal = journal
            $0.size = size
        }
        let lastTime = replica.lastTime
        pending.withLockedValue { $0.lastTime = lastTime }
        let held = replica.read { $0.connections.count }
        // Nobody stays online across a restart: the last run's connections are gone.
        submit(.nodeDown(replica.node))
        queue.sync { flush() }
        logger.info(
            "Journal replayed",
            metadata: [
                "path": "\(path)", "records": "\(reading.records.count)", "bytes": "\(size)",
                "connections_released": "\(held)", "duration": "\(ContinuousClock.now - started)",
                "fsync": "\(settings.fsync.rawValue)",
            ])
    }

    /// With `interval`, syncs the journal once a second.
    package func run() async {
        guard settings.fsync == .interval else { return }
        while !stopped.withLockedValue({ $0 }) {
            guard (try? await Task.sleep(for: .seconds(1))) != nil else { return }
            queue.async { self.syncIfNeeded() }
        }
    }

    private func syncIfNeeded() {
        let path = self.path
        disk.withLockedValue { disk in
            guard disk.unsynced, disk.journal >= 0 else { return }
            disk.unsynced = false
            do {
                try JournalFiles.sync(disk.journal, path: path)
            } catch {
                logger.warning("Cannot sync the journal", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Writes and syncs what is left, and lets the folder go.
    package func stop() async {
        stopped.withLockedValue { $0 = true }
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
