import NIOCore
import RedisClient

/// What a reader knows of the pushes it takes entries from: its subscriber connection's, to
/// the same Redis, on the same event loop. (A connection of its own: one that is subscribed
/// counts as a pub/sub client to Redis, whose output limit, 32 MB by default, a snapshot or
/// a long read on the reader could pass.)
final class Follower: Sendable {
    struct State {
        var chain = EntryChain()
        /// The reader, waiting for a push (or for its connection to end).
        var waiting: (() -> Void)?
        var pushedSinceCheck = false
        /// Whether the stream is being read because nothing was pushed for a while.
        var readingAfterSilence = false
    }

    let state: NIOLoopBoundBox<State>

    init(state: NIOLoopBoundBox<State>) {
        self.state = state
    }
}

extension RedisLog {
    /// Connects the reader's subscriber and subscribes it to ``ClusterKeys/appended``; the
    /// two connections close together. After each ``RedisLog/pushSilence`` in which nothing
    /// was pushed, a reader waiting for pushes reads the stream: if it finds entries, pushes
    /// stopped coming (a connection cut without a word), and both connections are made anew.
    func subscribe(alongside reader: RedisConnection) async throws -> Follower {
        var configuration = configuration(role: "subscriber", commandTimeout: .seconds(5))
        // The reader's Redis, not whichever the sentinels name by now.
        (configuration.host, configuration.port) = (reader.host, reader.port)
        let loop = reader.eventLoop
        let state = NIOLoopBoundBox.makeBoxSendingValue(Follower.State(), eventLoop: loop)
        let subscriber = try await RedisConnection.connect(configuration, group: loop) { value in
            guard let pushed = PublishedAppend.pushed(in: value) else { return }
            state.value.pushedSinceCheck = true
            guard state.value.chain.pushed(pushed), let waiting = state.value.waiting else { return }
            state.value.waiting = nil
            // Behind the rest of this read's pushes: they go in the same batch.
            loop.assumeIsolated().execute(waiting)
        }
        do {
            try await subscriber.sendExpectingNoReply(RESPCommand(["SUBSCRIBE", ClusterKeys.appended]))
            // Answered after the subscription's confirmation: pushes come from here on.
            _ = try await subscriber.send(RESPCommand(["PING"]))
        } catch {
            await subscriber.close()
            throw error
        }
        // A reader waiting for a push learns that its connection ended.
        reader.closeFuture.whenComplete { _ in
            subscriber.closeSoon()
            guard let waiting = state.value.waiting else { return }
            state.value.waiting = nil
            waiting()
        }
        subscriber.closeFuture.whenComplete { _ in reader.closeSoon() }
        let check = loop.scheduleRepeatedTask(initialDelay: .init(Self.pushSilence), delay: .init(Self.pushSilence)) {
            _ in
            defer { state.value.pushedSinceCheck = false }
            guard !state.value.pushedSinceCheck, let waiting = state.value.waiting else { return }
            state.value.waiting = nil
            state.value.chain.checkStream()
            state.value.readingAfterSilence = true
            waiting()
        }
        subscriber.closeFuture.whenComplete { _ in check.cancel() }
        return Follower(state: state)
    }
}
