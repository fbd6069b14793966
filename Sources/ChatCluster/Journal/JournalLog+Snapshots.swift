import ChatCore
import ChatHub
import Dispatch
import Logging
import NIOConcurrencyHelpers

/// The background work: with `interval`, a sync every second; and every
/// `DATA_SNAPSHOT_SECONDS` (or `DATA_SNAPSHOT_ENTRIES` records), a snapshot.
///
/// A snapshot at position P is taken where a new segment begins: a segment file is
/// prepared (its header synced); then on the journal's queue what gathered is written and
/// applied, and with the replica's lock held the state is copied (a copy-on-write value,
/// so the copy is cheap) and the prepared file becomes the segment starting at P; the state
/// is then encoded and written off the queue, under a temporary name renamed into place
/// once synced.
/// ``SnapshotSchedule`` decides, as for a cluster: each snapshot is written before the
/// files behind the *previous* one go, so a damaged newest snapshot leaves one to salvage
/// from; once nothing new comes, only the newest is kept.
extension JournalLog {
    package func run() async {
        // Until ``stop()`` ends the stream: the timer's sleep is cut short then.
        await withTaskGroup(of: Void.self) { work in
            work.addTask { for await _ in self.stopping.stream {} }
            work.addTask { await self.tick() }
            await work.next()
            work.cancelAll()
        }
    }

    private func tick() async {
        let interval = settings.snapshotInterval
        let tick = min(interval, .seconds(1))
        var schedule = SnapshotSchedule(
            clock: ContinuousClock(), interval: interval, entries: Int64(settings.snapshotEntries),
            // One record per journal entry: its position counts records.
            recordsApplied: disk.withLockedValue { $0.position })
        while (try? await Task.sleep(for: tick)) != nil {
            if settings.fsync == .interval { queue.async { self.syncIfNeeded() } }
            guard schedule.isDue(recordsApplied: disk.withLockedValue({ $0.position })) else { continue }
            snapshot(&schedule)
        }
    }

    /// Where a snapshot cuts the journal: the state up to a position, and what the schedule
    /// said to do with it.
    private struct SnapshotCut {
        var state: HubState
        var position: Int64
        var upTo: StreamID
        var step: SnapshotSchedule<ContinuousClock>.Step
    }

    private func snapshot(_ schedule: inout SnapshotSchedule<ContinuousClock>) {
        let directory = settings.directory
        guard let next = prepareSegment() else { return }
        // The cut, in one go: the state holds exactly the records before the position, and
        // the segment that begins there gets every record after it. On the queue, which
        // writes with `always`, and under the replica's lock, which `interval` writes
        // under. (Taken in two steps, a write in between went to the old segment, behind
        // the snapshot, and a start from that snapshot never replayed it.)
        let cut = queue.sync { () -> SnapshotCut? in
            flush()
            // Most of what `interval` left unsynced, before the loops are held.
            syncIfNeeded()
            var replaced: Int32?
            defer {
                if let replaced {
                    close(replaced)
                    JournalFiles.syncFolder(directory)
                } else {
                    close(next)
                    JournalFiles.remove(JournalFiles.nextSegment(in: directory))
                }
            }
            return replica.withStateHeld { state, lastTime -> SnapshotCut? in
                let (position, failing) = disk.withLockedValue { ($0.position, $0.failing) }
                guard !failing else { return nil }
                // The position as the entry's id, so the schedule compares snapshots by it.
                let upTo = StreamID(milliseconds: lastTime.milliseconds, sequence: position)
                let step = schedule.next(upTo: upTo, epoch: "journal")
                if case .write = step {
                    switch beginSegment(at: position, with: next) {
                    case .begun(let old): replaced = old
                    case .alreadyOpen: break
                    case .failed: return nil
                    }
                }
                return SnapshotCut(state: state, position: position, upTo: upTo, step: step)
            }
        }
        guard let cut else { return }
        let upTo = cut.upTo
        switch cut.step {
        case .nothing:
            return
        case .trim(let point):
            removeFiles(before: point.sequence)
            schedule.trimmed(to: point)
        case .write(let previous):
            let started = ContinuousClock.now
            let path = JournalFiles.snapshot(at: cut.position, in: settings.directory)
            do {
                let bytes = SnapshotFileFormat.file(
                    try HubSnapshot.stored(cut.state, upTo: upTo, position: cut.position))
                try JournalFiles.writeAtomically(bytes, to: path, in: settings.directory)
                schedule.wrote(upTo: upTo)
                metrics?.snapshotWritten()
                if let previous {
                    removeFiles(before: previous.sequence)
                    schedule.trimmed(to: previous)
                }
                if snapshotsFailing.withLockedValue({ failing in
                    defer { failing = false }
                    return failing
                }) {
                    logger.notice("Writing snapshots again")
                }
                logger.info(
                    "Snapshot written",
                    metadata: [
                        "path": "\(path)", "bytes": "\(bytes.count)", "position": "\(cut.position)",
                        "duration": "\(ContinuousClock.now - started)",
                    ])
            } catch {
                snapshotFailed("Snapshot not written", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
    }

    /// A snapshot that could not be made is tried again each second while it is due (a full
    /// disk): the error is logged once per episode, the retries at debug level.
    private func snapshotFailed(_ message: Logger.Message, metadata: Logger.Metadata) {
        let first = snapshotsFailing.withLockedValue { failing in
            defer { failing = true }
            return !failing
        }
        if first {
            logger.error(message, metadata: metadata)
        } else {
            logger.debug(message, metadata: metadata)
        }
    }

    /// A new segment's file with its header, synced, under a temporary name until a cut
    /// names it (off the replica's lock: this takes a disk flush).
    /// - Returns: its descriptor, or `nil` when it could not be made.
    private func prepareSegment() -> Int32? {
        let path = JournalFiles.nextSegment(in: settings.directory)
        do {
            let journal = try JournalFiles.createForAppending(path)
            do {
                try JournalFiles.write(JournalFormat.header, to: journal, path: path)
                try JournalFiles.sync(journal, path: path)
            } catch {
                close(journal)
                JournalFiles.remove(path)
                throw error
            }
            return journal
        } catch {
            snapshotFailed("Cannot begin a journal segment", metadata: ["path": "\(path)", "error": "\(error)"])
            return nil
        }
    }

    private enum SegmentChange {
        /// The prepared segment is the open one; the old one's descriptor is to be closed
        /// once the replica's lock is released.
        case begun(replacing: Int32)
        /// The open segment already starts at the position: the prepared one is not needed.
        case alreadyOpen
        /// The old segment stays open.
        case failed
    }

    /// Ends the open segment (synced) and makes the prepared one, `next`, the one starting
    /// at `position` (with the replica's lock held, between two writes).
    private func beginSegment(at position: Int64, with next: Int32) -> SegmentChange {
        let directory = settings.directory
        return disk.withLockedValue { disk in
            let path = JournalFiles.segment(at: position, in: directory)
            guard path != disk.path else { return .alreadyOpen }
            do {
                try JournalFiles.sync(disk.journal, path: disk.path)
                try JournalFiles.move(JournalFiles.nextSegment(in: directory), to: path)
            } catch {
                snapshotFailed("Cannot begin a journal segment", metadata: ["path": "\(path)", "error": "\(error)"])
                return .failed
            }
            defer {
                (disk.journal, disk.path, disk.size, disk.unsynced) = (next, path, JournalFormat.header.count, false)
            }
            return .begun(replacing: disk.journal)
        }
    }

    /// Removes the segments and snapshots before `position` (a snapshot there replaces them).
    private func removeFiles(before position: Int64) {
        guard let (segments, snapshots) = try? JournalFiles.listing(of: settings.directory) else { return }
        for start in segments where start < position {
            JournalFiles.remove(JournalFiles.segment(at: start, in: settings.directory))
        }
        for at in snapshots where at < position {
            JournalFiles.remove(JournalFiles.snapshot(at: at, in: settings.directory))
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
