import ChatHub
import NIOConcurrencyHelpers
import NIOCore
import RedisClient

/// A node's appends, sent to Redis as calls of the append script (``PublishedAppend``) on
/// the writer's event loop, one call out at a time per writer: the first append of a quiet
/// moment leaves at the end of its loop tick; those that come while a call is out leave
/// together when its answer is in (a group commit). Redis runs the script, looks up the
/// entry before them and publishes once per call, and each node takes a call's entries as
/// one push: under load the calls grow instead of multiplying, and a line sent alone waits
/// for nothing.
///
/// Appends leave in the order they were made, each to the writer the node had when it was
/// made; each append's outcome is its own.
final class AppendQueue: Sendable {
    struct Append: Sendable {
        var fields: PublishedAppend.Fields
        var sequence: UInt64
        var writer: RedisConnection
        /// Told if Redis did not take it, or may not have.
        var failed: @Sendable (RedisError) -> Void
    }

    /// A writer's appends not sent yet. A lane exists while a send is scheduled or a call
    /// is out for its writer; what is added meanwhile waits for that call's answer.
    private struct Lane {
        let writer: RedisConnection
        var waiting: [Append]
    }

    private let lanes = NIOLockedValueBox<[Lane]>([])

    /// Queues an append. When its writer has no call out, a send is scheduled behind the
    /// tasks already queued on the writer's loop, so the appends of that tick go together.
    func add(_ append: Append) {
        let mustSchedule = lanes.withLockedValue { lanes in
            if let index = lanes.firstIndex(where: { $0.writer === append.writer }) {
                lanes[index].waiting.append(append)
                return false
            }
            lanes.append(Lane(writer: append.writer, waiting: [append]))
            return true
        }
        guard mustSchedule else { return }
        schedule(append.writer)
    }

    private func schedule(_ writer: RedisConnection) {
        writer.eventLoop.execute { self.send(to: writer) }
    }

    /// Sends what waits for `writer`, then, once every call of it is answered, what came
    /// meanwhile; with nothing waiting, the lane closes and the next append opens it again.
    private func send(to writer: RedisConnection) {
        let appends: [Append] = lanes.withLockedValue { lanes in
            guard let index = lanes.firstIndex(where: { $0.writer === writer }) else { return [] }
            let appends = lanes[index].waiting
            if appends.isEmpty {
                lanes.remove(at: index)
            } else {
                lanes[index].waiting = []
            }
            return appends
        }
        guard !appends.isEmpty else { return }
        var calls: [EventLoopFuture<Void>] = []
        var start = appends.startIndex
        while start < appends.endIndex {
            let batch = Array(appends[start..<min(start + PublishedAppend.maximumBatch, appends.endIndex)])
            start += batch.count
            let call = writer.sendWithoutWaiting(PublishedAppend.command(entries: batch.map(\.fields)))
            call.whenComplete { result in Self.settle(batch, with: result) }
            calls.append(call.map { _ in })
        }
        EventLoopFuture.andAllComplete(calls, on: writer.eventLoop).whenComplete { _ in self.schedule(writer) }
    }

    /// Tells each append of a call that Redis refused, or may not have taken, it.
    private static func settle(_ batch: [Append], with result: Result<RESPValue, any Error>) {
        let outcomes: [Result<StreamID, RedisError>]
        switch result {
        case .success(let reply):
            outcomes =
                PublishedAppend.outcomes(of: reply, entries: batch.count)
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
