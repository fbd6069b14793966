import ChatCore
import ChatTestSupport
import Testing

@testable import ChatServer

@Suite(.serialized) struct ConnectionTests {
    @Test func oneConnectionPerIPAndTheSlotIsFreedAtOnce() async throws {
        try await withTestServer { server in
            let first = try await server.connectAndGreet(from: "127.0.0.9")
            let second = try await server.connect(from: "127.0.0.9")
            #expect(
                try await second.waitForClose() == ["ERROR: IP address 127.0.0.9 already has an active connection"])
            // Another address is unaffected.
            _ = try await server.connectAndGreet(from: "127.0.0.10")

            await first.close()
            _ = try await server.waitForOccupancy { $0.connections == 1 }
            // No "wait a few seconds": the slot is free right away.
            let third = try await server.connectAndGreet(from: "127.0.0.9")
            #expect(!third.isClosed)
        }
    }

    @Test func thePerIPLimitIsASetting() async throws {
        try await withTestServer(configure: { $0.maxConnectionsPerIP = 2 }) { server in
            _ = try await server.connectAndGreet(from: "127.0.0.9")
            _ = try await server.connectAndGreet(from: "127.0.0.9")
            let third = try await server.connect(from: "127.0.0.9")
            #expect(
                try await third.waitForClose() == ["ERROR: IP address 127.0.0.9 already has an active connection"])
        }
    }

    @Test func aDisconnectFreesTheUsernameAndTellsTheRoom() async throws {
        try await withTestServer { server in
            let alice = try await server.login("alice")
            let bob = try await server.login("bob")
            try await alice.readUntil("*** bob joined the room ***")
            await bob.close()
            #expect(try await alice.readLine() == "*** bob left the room ***")
            _ = try await server.waitForOccupancy { $0.onlineUsers == 1 && $0.connections == 1 }
            let again = try await server.login("BOB")
            #expect(!again.isClosed)
            #expect(try await alice.readLine() == "*** BOB joined the room ***")
        }
    }

    @Test func everyRoomHasOneOrderForAllItsMembers() async throws {
        try await withTestServer { server in
            var clients: [TestClient] = []
            for index in 0..<6 { clients.append(try await server.login("user\(index)")) }
            for client in clients { _ = try await client.linesUntilCaughtUp() }
            let senders = Array(clients.prefix(3))
            let perSender = 150
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, sender) in senders.enumerated() {
                    group.addTask {
                        for line in 0..<perSender { try await sender.send("s\(index)-\(line)") }
                    }
                }
                try await group.waitForAll()
            }
            var sequences: [[String]] = []
            for client in clients {
                sequences.append(try await client.readLines(3 * perSender, timeout: .seconds(30)))
            }
            // Every member saw the same lines in the same order ...
            for sequence in sequences.dropFirst() { #expect(sequence == sequences[0]) }
            // ... and each sender's lines in the order they were sent.
            for index in 0..<3 {
                let mine = sequences[0].filter { $0.hasPrefix("[user\(index)]: ") }
                #expect(mine == (0..<perSender).map { "[user\(index)]: s\(index)-\($0)" })
            }
        }
    }

    /// Join and leave notices are gathered per member for a few milliseconds (a burst of
    /// logins costs one write per member); they must still keep their place in the room's
    /// one order, before the newcomer's first line and the departure after it.
    @Test func joinAndLeaveNoticesKeepTheirPlaceInTheRoomsOrder() async throws {
        try await withTestServer { server in
            var watchers: [TestClient] = []
            for index in 0..<4 { watchers.append(try await server.login("watcher\(index)")) }
            for watcher in watchers { _ = try await watcher.linesUntilCaughtUp() }

            var expected: [String] = []
            for index in 0..<6 {
                let newcomer = try await server.login("new\(index)")
                try await newcomer.send("hello \(index)")
                try await newcomer.send("/join #elsewhere\(index)")
                try await newcomer.readUntil("*** You joined #elsewhere\(index) ***")
                expected += [
                    "*** new\(index) joined the room ***", "[new\(index)]: hello \(index)",
                    "*** new\(index) left the room ***",
                ]
            }
            for watcher in watchers {
                let lines = try await watcher.readLines(expected.count)
                #expect(lines == expected)
            }
            // A notice with nothing after it still arrives on its own.
            _ = try await server.login("last")
            for watcher in watchers {
                #expect(try await watcher.readLine(timeout: .seconds(2)) == "*** last joined the room ***")
            }
        }
    }

    @Test func aClientThatDoesNotReadIsDisconnectedWhileOthersKeepReceiving() async throws {
        try await withTestServer(configure: { $0.maxSendQueueBytes = 64 * 1024 }) { server in
            let sender = try await server.login("sender")
            let reader = try await server.login("reader")
            // Log the slow one in by hand, then stop reading: its kernel buffers fill,
            // then the server's queue for it passes MAX_SENDQ_BYTES.
            let slow = try await server.login("slowpoke", receiveBufferSize: 4096)
            try await slow.stopReading()
            try await sender.readUntil("*** slowpoke joined the room ***")
            try await reader.readUntil("*** slowpoke joined the room ***")

            let payload = String(repeating: "x", count: 1000)
            var sent = 0
            var received = 0
            var disconnected = false
            // Bounded: at most 20 000 lines (20 MB), stopping as soon as the server acts.
            // Batches of 20 lines stay well inside the honest reader's send queue.
            while sent < 20_000 && !disconnected {
                for _ in 0..<20 {
                    try await sender.send("\(sent) \(payload)")
                    sent += 1
                }
                // The healthy reader keeps up with everything so far, in order.
                let lines = try await reader.readLines(20, timeout: .seconds(20))
                for line in lines {
                    if line.hasPrefix("*** ") {
                        #expect(line == "*** slowpoke left the room ***")
                        disconnected = true
                    } else {
                        #expect(line == "[sender]: \(received) \(payload)")
                        received += 1
                    }
                }
                _ = try await sender.linesArriving(within: .zero)
            }
            #expect(disconnected, "the non-reading client was still connected after \(sent) lines")
            let occupancy = try await server.waitForOccupancy { $0.onlineUsers == 2 }
            #expect(occupancy.connections == 2)
            // The others are unaffected.
            try await sender.send("after")
            try await reader.readUntil("[sender]: after")
        }
    }

    /// Lines to a plain TCP client go straight to its socket while the kernel takes them,
    /// and queue in NIO once its buffers are full; both ways, and the way back, keep order.
    @Test func aClientThatPausesReadingGetsEveryLineInOrderWhenItReadsAgain() async throws {
        try await withTestServer(configure: { $0.maxSendQueueBytes = 16 * 1024 * 1024 }) { server in
            let sender = try await server.login("sender")
            let pausing = try await server.login("pausing", receiveBufferSize: 4096)
            try await sender.readUntil("*** pausing joined the room ***")
            let ports = try #require(pausing.ports)
            // A small kernel buffer on the server's side (it would grow to megabytes), so
            // that a few lines fill it.
            let socket = try #require(ProcessSocket.descriptor(localPort: ports.remote, remotePort: ports.local))
            try ProcessSocket.setSendBuffer(of: socket, bytes: 8192)
            try await pausing.stopReading()

            let payload = String(repeating: "y", count: 900)
            var sent = 0
            // The server's send queue for the pausing client, in the kernel, stops moving
            // while lines keep coming: the kernel is full and the newer lines wait in NIO.
            // Bounded: at most 100 batches of 20 lines (1.8 MB).
            var lastQueue = -1
            var batchesWithoutGrowth = 0
            while batchesWithoutGrowth < 3 && sent < 2000 {
                for _ in 0..<20 {
                    try await sender.send("\(sent) \(payload)")
                    sent += 1
                }
                _ = try await sender.linesUntilCaughtUp()
                let queue = KernelSocketQueues.of(localPort: ports.remote, remotePort: ports.local)?.sendQueue ?? -1
                batchesWithoutGrowth = queue > 0 && queue == lastQueue ? batchesWithoutGrowth + 1 : 0
                lastQueue = queue
            }
            #expect(batchesWithoutGrowth == 3, "the kernel took all \(sent) lines (its queue: \(lastQueue) bytes)")
            // More while the backlog waits in NIO, then the client reads everything.
            for _ in 0..<20 {
                try await sender.send("\(sent) \(payload)")
                sent += 1
            }
            // It reads again; more lines come while NIO still writes the backlog, as the
            // kernel's buffer empties and fills.
            try await pausing.resumeReading()
            for _ in 0..<200 {
                try await sender.send("\(sent) \(payload)")
                sent += 1
            }
            let lines = try await pausing.readLines(sent, timeout: .seconds(60))
            let misplaced = lines.indices.first { lines[$0] != "[sender]: \($0) \(payload)" }
            #expect(misplaced == nil, "line \(misplaced ?? 0) is \(misplaced.map { lines[$0].prefix(20) } ?? "")")
            // Back to the socket once NIO's queue is empty: still in order.
            for index in 0..<20 { try await sender.send("after \(index)") }
            #expect(try await pausing.readLines(20) == (0..<20).map { "[sender]: after \($0)" })
            #expect(!pausing.isClosed)
        }
    }

    /// A socket closed while its room is busy must not take anyone else's lines with its
    /// descriptor number: the shard writes to a socket only while its connection is open,
    /// and a guest (not in any room) gets nothing of the room.
    @Test func connectionsThatComeAndGoWhileARoomIsBusyGetOnlyWhatIsTheirs() async throws {
        try await withTestServer { server in
            let sender = try await server.login("sender")
            let busy = Task {
                for index in 0..<3000 where !Task.isCancelled {
                    try await sender.send("busy \(index)")
                    if index % 20 == 0 { try await Task.sleep(for: .milliseconds(2)) }
                }
            }
            defer { busy.cancel() }
            for round in 0..<4 {
                var leaving: [TestClient] = []
                for index in 0..<8 { leaving.append(try await server.login("leaver\(round)x\(index)")) }
                // Gone without a word while the room's lines are written to them.
                for client in leaving { await client.close() }
                // New connections take the freed descriptor numbers.
                var guests: [TestClient] = []
                for _ in 0..<8 { guests.append(try await server.connectAndGreet()) }
                for guest in guests {
                    let lines = try await guest.linesArriving(within: .milliseconds(50))
                    #expect(lines.isEmpty, "a guest got \(lines)")
                    await guest.close()
                }
            }
            busy.cancel()
            _ = await busy.result
            try await sender.send("still here")
            try await sender.readUntil("[sender]: still here", timeout: .seconds(30))
        }
    }

    @Test func shutdownTellsEveryoneAndClosesEveryConnection() async throws {
        try await withTestServer { server in
            let alice = try await server.login("alice")
            let guest = try await server.connectAndGreet()
            server.server.shutdown()
            #expect(try await alice.waitForClose().last == "*** Server is shutting down ***")
            #expect(try await guest.waitForClose() == ["*** Server is shutting down ***"])
        }
    }

    /// Connections on different event loops close at different moments; nobody may see a
    /// departure (or an ownership change) after, or before, their own shutdown notice.
    @Test func theShutdownNoticeIsEveryonesLastLine() async throws {
        try await withTestServer { server in
            var users: [TestClient] = []
            for index in 0..<8 {
                users.append(try await server.login("user\(index)"))
            }
            // user0 owns #den, user1 is in it too; the other six stay in #general.
            try await users[0].send("/create #den")
            try await users[0].readUntil("*** You created #den (public); you are its owner ***")
            try await users[1].send("/join #den")
            try await users[0].readUntil("*** user1 joined the room ***")
            try await users[7].send("sync")
            for user in users[2...] { try await user.readUntil("[user7]: sync") }
            try await users[1].send("sync")
            for user in users[0...1] { try await user.readUntil("[user1]: sync") }

            server.server.shutdown()
            for user in users {
                let lines = try await user.waitForClose()
                #expect(lines == ["*** Server is shutting down ***"], "\(lines)")
            }
        }
    }
}
