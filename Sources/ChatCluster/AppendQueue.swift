import ChatHub
import NIOConcurrencyHelpers
import NIOCore
import RedisClient

/// The appends of one loop tick, sent as one call of the append script (``PublishedAppend``)
/// on the writer's event loop: Redis appends them as one log entry, looks up the entry
/// before it and publishes once per batch, not once per append, and each node takes the
/// batch as one push. Appends leave in the order they were made, each to the writer the node
/// had when it was made; the appends of a call are taken or refused together.
final class AppendQueue: Sendable {
    struct Append: Sendable {
        var fields: PublishedAppend.Fields
        var sequence: UInt64
        var writer: RedisConnection
        /// Told if Redis did not take it, or may not have.
        var failed: @Sendable (RedisError) -> Void
    }

    private let waiting = NIOLockedValueBox<[Append]>([])

    /// Queues an append; the first of a tick (for its writer) schedules the send, behind the
    /// tasks already queued on the writer's loop.
    func add(_ append: Append) {
        // A send is scheduled for each writer whose appends wait: when the last one waiting
        // is this writer's, its send has not run yet (a send takes all of its writer's).
        let mustSchedule = waiting.withLockedValue { waiting in
            defer { waiting.append(append) }
            return waiting.last?.writer !== append.writer
        }
        guard mustSchedule else { return }
        let writer = append.writer
        writer.eventLoop.execute { self.send(to: writer) }
    }

    private func send(to writer: RedisConnection) {
        let appends = waiting.withLockedValue { waiting in
            let mine = waiting.filter { $0.writer === writer }
            waiting.removeAll { $0.writer === writer }
            return mine
        }
        var start = appends.startIndex
        while start < appends.endIndex {
            let batch = Array(appends[start..<min(start + PublishedAppend.maximumBatch, appends.endIndex)])
            start += batch.count
            writer.sendWithoutWaiting(PublishedAppend.command(records: batch.map(\.fields))).whenComplete { result in
                let outcomes: [Result<StreamID, RedisError>]
                switch result {
                case .success(let reply):
                    outcomes =
                        PublishedAppend.outcomes(of: reply, records: batch.count)
                        ?? Array(repeating: .failure(.protocolError("unexpected reply \(reply)")), count: batch.count)
                case .failure(let error):
                    let error = error as? RedisError ?? .connectionClosed
                    outcomes = Array(repeating: .failure(error), count: batch.count)
                }
                for (append, outcome) in zip(batch, outcomes) {
                    if case .failure(let error) = outcome { append.failed(error) }
                }
            }
        }
    }
}
