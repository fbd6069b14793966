import ChatCore
import ChatHub
import Dispatch
import Logging
import NIOConcurrencyHelpers

/// Start-up: the newest snapshot, then every journal segment from its position on, then the
/// previous run's connections released; all before the node listens.
extension JournalLog {
    package func start() async throws {
        let directory = settings.directory
        let started = ContinuousClock.now
        let lock = try JournalFiles.takeLock(of: directory)
        disk.withLockedValue { $0.lock = lock }
        let (segments, snapshots) = try JournalFiles.listing(of: directory)
        let base = try loadNewestSnapshot(snapshots)
        let (position, open, replayed) = try replay(segments.filter { $0 >= base }, from: base)
        let (path, size) = try open ?? beginFirstSegment(at: position)
        let journal = try JournalFiles.openForAppending(path)
        disk.withLockedValue { disk in
            disk.journal = journal
            disk.path = path
            disk.size = size
            disk.position = position
        }
        let lastTime = replica.lastTime
        pending.withLockedValue { $0.lastTime = lastTime }
        metrics?.replayed(records: replayed)
        let held = replica.read { $0.connections.count }
        // Nobody stays online across a restart: the last run's connections are gone.
        submit(.nodeDown(replica.node))
        queue.sync { flush() }
        logger.info(
            "Journal replayed",
            metadata: [
                "directory": "\(directory)", "snapshot_position": "\(base)", "records_replayed": "\(replayed)",
                "position": "\(position)", "connections_released": "\(held)",
                "duration": "\(ContinuousClock.now - started)", "fsync": "\(settings.fsync.rawValue)",
            ])
    }

    /// Loads the newest snapshot that can be read.
    /// - Returns: its position (0 without one).
    private func loadNewestSnapshot(_ positions: [Int64]) throws -> Int64 {
        for position in positions.reversed() {
            let path = JournalFiles.snapshot(at: position, in: settings.directory)
            do {
                guard let bytes = try JournalFiles.readAll(path) else { continue }
                let contents = try SnapshotFileFormat.contents(of: bytes)
                let loaded = try HubSnapshot.read(Array(contents), configuration: configuration)
                replica.load(loaded.state, lastTime: LogTime(milliseconds: loaded.upTo.milliseconds))
                metrics?.snapshotLoaded()
                return position
            } catch SnapshotFileFormat.ReadError.newerFormat(let version) {
                throw JournalError.unreadable(path: path, reason: "it is of format \(version), this version reads 1")
            } catch {
                guard settings.salvage else { throw JournalError.damagedSnapshot(path: path, reason: "\(error)") }
                logger.warning(
                    "A damaged snapshot is passed over (DATA_RECOVERY=salvage)",
                    metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
        return 0
    }

    /// Applies the records of `segments` (those from the snapshot's position on).
    /// - Returns: the position after the last record, the last segment to append to (its
    ///   path and length), and how many records were applied.
    private func replay(
        _ segments: [Int64], from base: Int64
    ) throws -> (position: Int64, open: (path: String, size: Int)?, replayed: Int) {
        var position = base
        var replayed = 0
        var open: (path: String, size: Int)?
        for (index, start) in segments.enumerated() {
            let path = JournalFiles.segment(at: start, in: settings.directory)
            guard start == position else {
                throw JournalError.missing(path: path, from: position, to: start)
            }
            // Read a piece at a time and applied as it is read: a long journal needs no
            // more memory than its longest record. What the end turns out to be decides only
            // what is cut off; the records given are those before it either way.
            var reader = JournalFormat.Reader()
            var batch: [(command: HubCommand, time: LogTime)] = []
            var count = 0
            var size = 0
            do {
                _ = try JournalFiles.readInPieces(path) { piece in
                    size += piece.count
                    try reader.feed(piece) { payload, offset in
                        do {
                            batch.append(try Self.entry(ofRecord: payload))
                        } catch {
                            throw JournalError.unreadable(
                                path: path, reason: "the record at byte \(offset) cannot be read: \(error)")
                        }
                        count += 1
                        if batch.count == 1024 {
                            replica.apply(batch)
                            batch.removeAll(keepingCapacity: true)
                        }
                    }
                }
            } catch JournalFormat.HeaderError.newerFormat(let version) {
                throw JournalError.unreadable(path: path, reason: "it is of format \(version), this version reads 1")
            } catch is JournalFormat.HeaderError {
                throw JournalError.unreadable(path: path, reason: "it does not start as a journal does")
            }
            replica.apply(batch)
            let isLast = index == segments.count - 1
            var setAsideAfter = false
            switch reader.finish() {
            case .clean:
                break
            case .tornTail(let offset) where isLast:
                if offset < size {
                    logger.warning(
                        "The journal ends in a record cut short (a crash while writing it); it is cut off",
                        metadata: ["path": "\(path)", "offset": "\(offset)", "bytes_cut": "\(size - offset)"])
                    try JournalFiles.truncate(path, to: offset)
                }
                size = offset
            case .tornTail(let offset), .damaged(let offset):
                guard settings.salvage else { throw JournalError.damaged(path: path, offset: offset) }
                logger.warning(
                    "The journal is cut at its damage, and what follows it set aside (DATA_RECOVERY=salvage)",
                    metadata: ["path": "\(path)", "offset": "\(offset)"])
                try JournalFiles.truncate(path, to: offset)
                size = offset
                setAsideAfter = true
            }
            position += Int64(count)
            replayed += count
            open = size == 0 ? nil : (path, size)
            if size == 0 { JournalFiles.remove(path) }
            if setAsideAfter {
                for later in segments[(index + 1)...] {
                    try JournalFiles.setAside(JournalFiles.segment(at: later, in: settings.directory))
                }
                break
            }
        }
        return (position, open, replayed)
    }

    /// The first segment of a fresh folder (or after a snapshot whose segment is gone).
    private func beginFirstSegment(at position: Int64) throws(JournalError) -> (path: String, size: Int) {
        let path = JournalFiles.segment(at: position, in: settings.directory)
        let journal = try JournalFiles.openForAppending(path)
        defer { close(journal) }
        try JournalFiles.write(JournalFormat.header, to: journal, path: path)
        try JournalFiles.sync(journal, path: path)
        JournalFiles.syncFolder(settings.directory)
        return (path, JournalFormat.header.count)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
