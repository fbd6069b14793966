import ChatTestSupport
import Testing

@testable import ChatCluster
@testable import ChatHub

/// The cluster node's decisions, driven with a manual clock: what the cluster tests reach
/// through real processes and real time, here in microseconds and without a Redis.
@Suite struct ClusterNodeMachineTests {
    /// Stands for a Redis connection: the machine only holds it and hands it back.
    final class Link: Sendable {}

    typealias Machine = ClusterNodeMachine<Link, TestClock>

    let clock = TestClock()
    let heartbeat = Duration.seconds(2)
    let nodeTimeout = Duration.seconds(6)

    /// A node that joined as node 3 of epoch "e1", connected.
    func joinedMachine() -> (Machine, writer: Link, reader: Link) {
        var machine = Machine(clock: clock, timing: .init(heartbeat: heartbeat, nodeTimeout: nodeTimeout))
        machine.joined(asNode: 3, epoch: "e1")
        let (writer, reader) = (Link(), Link())
        machine.started(writer: writer, reader: reader)
        return (machine, writer, reader)
    }

    func sequence(of action: Machine.SubmitAction) throws -> UInt64 {
        guard case .append(_, let sequence, let node) = action else {
            Issue.record("refused: \(action)")
            throw CancellationError()
        }
        #expect(node == 3)
        return sequence
    }

    @Test func aNodeHoldingWhatItReadForTheReplicasIsNotDeaf() {
        var (machine, _, _) = joinedMachine()
        machine.beatAnswered(sentAt: clock.now, refreshed: true, beatTaken: true)
        _ = machine.replicasFellShort()
        clock.advance(by: nodeTimeout * 3)
        let whileHolding = machine.isDeaf()
        #expect(!whileHolding, "its beat waits behind the fence with everything else")
        _ = machine.replicasCaughtUp()
        let caughtUp = machine.isDeaf()
        #expect(!caughtUp, "the clock starts over once the replicas have caught up")
        machine.beatAnswered(sentAt: clock.now, refreshed: true, beatTaken: true)
        clock.advance(by: nodeTimeout + .milliseconds(1))
        let stuck = machine.isDeaf()
        #expect(stuck)
    }

    @Test func aBeatThatDoesNotComeBackForANodeTimeoutMakesTheNodeDeaf() {
        var (machine, _, _) = joinedMachine()
        let deaf = machine.isDeaf()
        #expect(!deaf)
        let sent = clock.now
        machine.beatAnswered(sentAt: sent, refreshed: true, beatTaken: true)
        clock.advance(by: nodeTimeout)
        let deaf2 = machine.isDeaf()
        #expect(!deaf2, "exactly a node timeout is not yet too long")
        clock.advance(by: .milliseconds(1))
        let deaf3 = machine.isDeaf()
        #expect(deaf3)
        let deaf4 = machine.isDeaf()
        #expect(!deaf4, "once told, the count starts again with the next beat")
    }

    @Test func aBeatReadBackInTimeKeepsTheNodeHearing() {
        var (machine, _, _) = joinedMachine()
        machine.beatAnswered(sentAt: clock.now, refreshed: true, beatTaken: true)
        clock.advance(by: .seconds(5))
        // A later beat taken meanwhile does not restart the count: the oldest unread one counts.
        machine.beatAnswered(sentAt: clock.now, refreshed: true, beatTaken: true)
        machine.applied(count: 10, records: 10, upTo: StreamID(milliseconds: 1, sequence: 0), ownBeatCameBack: true)
        clock.advance(by: .seconds(5))
        let deaf = machine.isDeaf()
        #expect(!deaf)
        // A beat Redis never answered is not waited for.
        machine.beatAnswered(sentAt: clock.now, refreshed: false, beatTaken: false)
        clock.advance(by: .seconds(30))
        let deaf2 = machine.isDeaf()
        #expect(!deaf2)
    }

    @Test func othersAreJudgedOnlyANodeTimeoutAfterAnOutageAndNeverWithoutRedis() throws {
        var (machine, _, _) = joinedMachine()
        #expect(try #require(machine.beat()).judgesOthers)
        machine.writerLost()
        #expect(machine.beat() == nil, "without a writer nobody is judged")
        clock.advance(by: .seconds(20))
        #expect(machine.beat() == nil)
        let writer = Link()
        let resent = machine.writerConnected(writer, tail: .zero)
        #expect(resent == [])
        let beat = try #require(machine.beat())
        #expect(beat.writer === writer)
        #expect(!beat.judgesOthers, "the others need a node timeout to refresh their keys after the outage")
        clock.advance(by: nodeTimeout - .milliseconds(1))
        #expect(try #require(machine.beat()).judgesOthers == false)
        clock.advance(by: .milliseconds(1))
        #expect(try #require(machine.beat()).judgesOthers)
    }

    @Test func anAppendInDoubtIsSettledOnlyOnceTheReaderReachedTheReconnect() throws {
        var (machine, writer, _) = joinedMachine()
        let taken = try sequence(of: machine.submit(.say(1, text: "taken", isAction: false)))
        _ = try sequence(of: machine.submit(.say(1, text: "lost", isAction: false)))
        _ = try sequence(of: machine.submit(.release(9)))
        // The connection dies under the three appends.
        let failure = machine.appendFailed(sequence: taken, rejectedByRedis: false)
        #expect(failure.logOutage && failure.refused == nil)
        machine.writerLost()
        guard case .refuse(logOutage: nil) = machine.submit(.say(1, text: "meanwhile", isAction: false)) else {
            Issue.record("a command without a writer is refused, and the outage was logged already")
            return
        }
        let tail = StreamID(milliseconds: 500, sequence: 0)
        let resent = machine.writerConnected(writer, tail: tail)
        #expect(resent == [])
        let after = try sequence(of: machine.submit(.say(1, text: "after", isAction: false)))
        // The reader has not reached the tail yet: nothing is settled.
        machine.applied(count: 1, records: 1, upTo: StreamID(milliseconds: 400, sequence: 0), ownBeatCameBack: false)
        machine.confirm(tag: Array(AppendLedger.entryTag(node: 3, sequence: taken).utf8))
        let settled = machine.settle()
        #expect(settled.isEmpty)
        // Another node's tag with the same number confirms nothing of this node's.
        machine.confirm(tag: Array(AppendLedger.entryTag(node: 4, sequence: after).utf8))
        machine.applied(count: 1, records: 1, upTo: tail, ownBeatCameBack: false)
        let settled2 = machine.settle()
        #expect(settled2 == [.say(1, text: "lost", isAction: false), .release(9)])
        let settled3 = machine.settle()
        #expect(settled3.isEmpty, "settled once")
        #expect(machine.awaitsOwnAppends, "the append sent after the reconnect still waits to come back")
        machine.confirm(tag: Array(AppendLedger.entryTag(node: 3, sequence: after).utf8))
        #expect(!machine.awaitsOwnAppends)
    }

    @Test func anErrorReplyRefusesTheAppendAtOnceAndTheOutageIsLoggedOncePerOutage() throws {
        var (machine, writer, _) = joinedMachine()
        let first = try sequence(of: machine.submit(.say(1, text: "one", isAction: false)))
        let (logged, refused) = machine.appendFailed(sequence: first, rejectedByRedis: true)
        #expect(logged)
        #expect(refused == .say(1, text: "one", isAction: false))
        let second = try sequence(of: machine.submit(.say(1, text: "two", isAction: false)))
        let failure = machine.appendFailed(sequence: second, rejectedByRedis: true)
        #expect(failure.logOutage == false)
        _ = machine.writerConnected(writer, tail: .zero)
        let outageIsNews = machine.outageBegins()
        #expect(outageIsNews, "a reconnect ends the outage: the next one is logged again")
    }

    @Test func withoutAWriterEveryCommandIsRefusedAndTheFirstRefusalLogsTheOutage() {
        var (machine, _, _) = joinedMachine()
        machine.writerLost()
        var logged: [Bool] = []
        for _ in 0..<3 {
            guard case .refuse(let logOutage) = machine.submit(.say(1, text: "hi", isAction: false)) else {
                Issue.record("appended without a writer")
                return
            }
            logged.append(logOutage != nil)
        }
        #expect(logged == [true, false, false])
        #expect(!machine.awaitsOwnAppends, "a refused command is not on the ledger")
    }

    @Test func whileReadEntriesWaitForTheReplicasCommandsAreRefusedAndReleasesKeptForAfter() throws {
        var (machine, _, _) = joinedMachine()
        let inFlight = try sequence(of: machine.submit(.say(1, text: "in flight", isAction: false)))
        let news = machine.replicasFellShort()
        #expect(news, "the first shortfall is news")
        guard case .refuse(logOutage: nil) = machine.submit(.say(1, text: "meanwhile", isAction: false)) else {
            Issue.record("a command was taken while the log's entries do not reach the replicas")
            return
        }
        let newsAgain = machine.replicasFellShort()
        #expect(!newsAgain, "logged once per episode")
        machine.keepRelease(7, isHeld: true)
        let resent = machine.replicasCaughtUp()
        #expect(resent == [7])
        let resentAgain = machine.replicasCaughtUp()
        #expect(resentAgain == [], "only once")
        // The line in flight was not settled either way: it applies when its entry does.
        #expect(machine.awaitsOwnAppends)
        machine.confirm(tag: Array(AppendLedger.entryTag(node: 3, sequence: inFlight).utf8))
        #expect(!machine.awaitsOwnAppends)
        _ = try sequence(of: machine.submit(.say(1, text: "after", isAction: false)))
        // A second episode is news again.
        let secondEpisode = machine.replicasFellShort()
        #expect(secondEpisode)
    }

    @Test func releasesThatCouldNotBeAppendedAreSentAgainOnReconnect() {
        var (machine, writer, _) = joinedMachine()
        machine.writerLost()
        machine.keepRelease(7, isHeld: true)
        machine.keepRelease(8, isHeld: false)
        let resent = machine.writerConnected(writer, tail: .zero)
        #expect(resent == [7], "only a connection the state still holds")
        let resent2 = machine.writerConnected(writer, tail: .zero)
        #expect(resent2 == [], "sent once")
    }

    @Test func aLateRefreshMakesTheNextReadCheckForATrimmedGap() {
        var (machine, _, _) = joinedMachine()
        #expect(!machine.needsTrimCheck())
        machine.beatAnswered(sentAt: clock.now, refreshed: true, beatTaken: true)
        clock.advance(by: heartbeat * 3 / 2)
        #expect(!machine.needsTrimCheck())
        clock.advance(by: .milliseconds(1))
        #expect(machine.needsTrimCheck(), "a beat was missed: the key may have expired")
        // A partition: the next refresh succeeds long after the one before.
        clock.advance(by: nodeTimeout)
        let sent = clock.now
        clock.advance(by: .milliseconds(10))
        machine.beatAnswered(sentAt: sent, refreshed: true, beatTaken: true)
        #expect(machine.needsTrimCheck(), "fresh again, but the key may have expired in between")
        machine.trimChecked()
        #expect(!machine.needsTrimCheck())
    }

    @Test func aFreshLogIsBegunOnceAnnouncesTheSameConnectionsWhenResumedAndRefusesWhatWasInDoubt() throws {
        var (machine, _, reader) = joinedMachine()
        _ = try sequence(of: machine.submit(.say(1, text: "in doubt", isAction: false)))
        machine.applied(count: 4, records: 4, upTo: StreamID(milliseconds: 9, sequence: 0), ownBeatCameBack: false)
        let announced = [Reannouncement(id: 1, ip: "127.0.0.2", member: nil)]
        var taken = 0
        let begun = machine.beginFreshLog {
            taken += 1
            return announced
        }
        #expect(begun.announced == announced)
        #expect(begun.lostEpoch == "e1")
        #expect(begun.abandoned == [.say(1, text: "in doubt", isAction: false)])
        #expect(machine.lastApplied == .zero)
        #expect(machine.position == 0)
        #expect(!machine.isCurrent(epoch: "e1"), "nothing read in the lost log applies any more")
        #expect(machine.isStartingFreshLog)
        machine.keepRelease(5, isHeld: false)
        // The connection failed half-way: the next try announces the same, abandons nothing more.
        let resumed = machine.beginFreshLog {
            taken += 1
            return []
        }
        #expect(taken == 1)
        #expect(resumed.announced == announced && resumed.lostEpoch == "e1" && resumed.abandoned.isEmpty)
        let toReconnect = machine.freshLogStarted(epoch: "e2")
        #expect(toReconnect === reader)
        #expect(machine.isCurrent(epoch: "e2"))
        #expect(!machine.isStartingFreshLog)
        let resent = machine.writerConnected(Link(), tail: .zero)
        #expect(resent == [5], "a release made while announcing is kept")
    }

    @Test func aFreshLogIsNotTrimmedUntilTheOtherNodesHadTimeToAdoptIt() {
        var (machine, _, _) = joinedMachine()
        #expect(machine.mayTrim, "a log this node joined is trimmed as usual")
        _ = machine.beginFreshLog { [] }
        _ = machine.freshLogStarted(epoch: "e2")
        #expect(!machine.mayTrim)
        clock.advance(by: nodeTimeout * 2 - .milliseconds(1))
        #expect(!machine.mayTrim, "another node may not have found the fresh log yet")
        clock.advance(by: .milliseconds(1))
        #expect(machine.mayTrim)
    }

    @Test func aLogIsLostWhenItsEpochIsGoneOrAnotherOrItEndsBeforeWhatWasApplied() {
        var (machine, _, _) = joinedMachine()
        let applied = StreamID(milliseconds: 90, sequence: 1)
        machine.applied(count: 5, records: 5, upTo: applied, ownBeatCameBack: false)
        #expect(machine.lostLog(epoch: "e1", tail: applied) == nil)
        #expect(machine.lostLog(epoch: "e1", tail: StreamID(milliseconds: 95, sequence: 0)) == nil)
        #expect(machine.lostLog(epoch: nil, tail: applied) == "the epoch key is gone")
        #expect(machine.lostLog(epoch: "e2", tail: applied) == "the epoch changed")
        // Redis came back from an older file: the log ends before what this node applied.
        #expect(
            machine.lostLog(epoch: "e1", tail: StreamID(milliseconds: 90, sequence: 0)) == "the log ends before 90-1")
    }

    @Test func aStoppingNodeKeepsNoConnectionAndLogsNoOutage() {
        var (machine, writer, reader) = joinedMachine()
        let closing = machine.stop()
        #expect(closing.writer === writer && closing.reader === reader)
        let resent = machine.writerConnected(Link(), tail: .zero)
        #expect(resent == nil)
        let kept = machine.readerConnected(Link())
        #expect(!kept)
        let outageIsNews = machine.outageBegins()
        #expect(!outageIsNews)
    }
}

/// When snapshots are written and the log trimmed behind them.
@Suite struct SnapshotScheduleTests {
    let clock = TestClock()

    func id(_ milliseconds: Int64) -> StreamID { StreamID(milliseconds: milliseconds, sequence: 0) }

    @Test func dueEveryIntervalOrSoonerAfterEnoughEntries() {
        var schedule = SnapshotSchedule(clock: clock, interval: .seconds(30), entries: 1000, recordsApplied: 0)
        let due = schedule.isDue(recordsApplied: 999)
        #expect(!due)
        let due2 = schedule.isDue(recordsApplied: 1000)
        #expect(due2)
        let due3 = schedule.isDue(recordsApplied: 1500)
        #expect(!due3, "counted from the last try")
        clock.advance(by: .seconds(29))
        let due4 = schedule.isDue(recordsApplied: 1500)
        #expect(!due4)
        clock.advance(by: .seconds(1))
        let due5 = schedule.isDue(recordsApplied: 1500)
        #expect(due5)
    }

    @Test func eachSnapshotTrimsBehindThePreviousAndAQuietLogBehindTheLatest() {
        var schedule = SnapshotSchedule(clock: clock, interval: .seconds(30), entries: 1000, recordsApplied: 0)
        let step = schedule.next(upTo: .zero, epoch: "e1")
        #expect(step == .nothing, "an empty log has nothing to keep")
        let step2 = schedule.next(upTo: id(10), epoch: "e1")
        #expect(step2 == .write(thenTrimTo: nil))
        schedule.wrote(upTo: id(10))
        let step3 = schedule.next(upTo: id(20), epoch: "e1")
        #expect(step3 == .write(thenTrimTo: id(10)))
        schedule.trimmed(to: id(10))
        schedule.wrote(upTo: id(20))
        let step4 = schedule.next(upTo: id(20), epoch: "e1")
        #expect(step4 == .trim(to: id(20)), "nothing new: trim behind the latest")
        schedule.trimmed(to: id(20))
        let step5 = schedule.next(upTo: id(20), epoch: "e1")
        #expect(step5 == .nothing)
    }

    @Test func aLostLeaseOrAFreshLogForgetsWhatThisNodeWrote() {
        var schedule = SnapshotSchedule(clock: clock, interval: .seconds(30), entries: 1000, recordsApplied: 0)
        schedule.wrote(upTo: id(10))
        _ = schedule.next(upTo: id(10), epoch: "e1")
        schedule.leaseLost()
        // Another node's snapshot may be the latest now: never trim behind this one's.
        let step = schedule.next(upTo: id(10), epoch: "e1")
        #expect(step == .write(thenTrimTo: nil))
        schedule.wrote(upTo: id(10))
        let step2 = schedule.next(upTo: id(30), epoch: "e2")
        #expect(step2 == .write(thenTrimTo: nil), "nothing of a lost log")
    }

    @Test func withoutTrimmingSnapshotsAreWrittenAndTheLogKeptWhole() {
        var schedule = SnapshotSchedule(clock: clock, interval: .seconds(1), entries: 1000, recordsApplied: 0)
        _ = schedule.next(upTo: id(10), epoch: "e1")
        schedule.wrote(upTo: id(10))
        let step = schedule.next(upTo: id(20), epoch: "e1", trimming: false)
        #expect(step == .write(thenTrimTo: nil), "trimming, it would trim behind 10")
        schedule.wrote(upTo: id(20))
        let quiet = schedule.next(upTo: id(20), epoch: "e1", trimming: false)
        #expect(quiet == .nothing)
        let allowed = schedule.next(upTo: id(20), epoch: "e1")
        #expect(allowed == .trim(to: id(20)))
    }
}
