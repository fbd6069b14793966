import ChatCore
import ChatHub
import Dispatch
import Logging
import NIOConcurrencyHelpers

/// The background work: with `interval`, a sync every second; and every
/// `DATA_SNAPSHOT_SECONDS` (or `DATA_SNAPSHOT_ENTRIES` records), a snapshot.
///
/// A snapshot at position P is taken where a new segment begins: on the journal's queue,
/// what gathered is written and applied, the state is copied (a copy-on-write value, so
/// the copy is cheap) and the segment starting at P is begun; the state is then encoded
/// and written off the queue, under a temporary name renamed into place once synced.
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
            position: disk.withLockedValue { $0.position })
        while (try? await Task.sleep(for: tick)) != nil {
            if settings.fsync == .interval { queue.async { self.syncIfNeeded() } }
            guard schedule.isDue(position: disk.withLockedValue({ $0.position })) else { continue }
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
        // The cut, on the queue in one go: the state holds exactly the records before the
        // position, and the segment that begins there gets every record after it. (Taken
        // in two steps, a write queued in between went to the old segment, behind the
        // snapshot, and a start from that snapshot never replayed it.)
        let cut = queue.sync { () -> SnapshotCut? in
            flush()
            let (position, failing) = disk.withLockedValue { ($0.position, $0.failing) }
            guard !failing else { return nil }
            // The position as the entry's id, so the schedule compares snapshots by it.
            let upTo = StreamID(milliseconds: replica.lastTime.milliseconds, sequence: position)
            let step = schedule.next(upTo: upTo, epoch: "journal")
            if case .write = step, !beginSegment(at: position) { return nil }
            return SnapshotCut(state: replica.read { $0 }, position: position, upTo: upTo, step: step)
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
                logger.info(
                    "Snapshot written",
                    metadata: [
                        "path": "\(path)", "bytes": "\(bytes.count)", "position": "\(cut.position)",
                        "duration": "\(ContinuousClock.now - started)",
                    ])
            } catch {
                logger.error("Snapshot not written", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
    }

    /// Ends the open segment (synced) and begins the one starting at `position` (on the
    /// queue, between two writes).
    /// - Returns: whether it began; the old segment stays open when it could not.
    private func beginSegment(at position: Int64) -> Bool {
        let directory = settings.directory
        let logger = self.logger
        return disk.withLockedValue { disk in
            let path = JournalFiles.segment(at: position, in: directory)
            guard path != disk.path else { return true }
            do {
                try JournalFiles.sync(disk.journal, path: disk.path)
                disk.unsynced = false
                let journal = try JournalFiles.openForAppending(path)
                do {
                    try JournalFiles.write(JournalFormat.header, to: journal, path: path)
                    try JournalFiles.sync(journal, path: path)
                } catch {
                    close(journal)
                    JournalFiles.remove(path)
                    throw error
                }
                JournalFiles.syncFolder(directory)
                close(disk.journal)
                disk.journal = journal
                disk.path = path
                disk.size = JournalFormat.header.count
                return true
            } catch {
                logger.error("Cannot begin a journal segment", metadata: ["path": "\(path)", "error": "\(error)"])
                return false
            }
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
