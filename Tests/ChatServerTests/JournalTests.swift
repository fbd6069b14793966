import ChatCore
import ChatTestSupport
import Foundation
import NIOPosix
import Testing

/// `DATA_DIR`: the real `chat-server` process restarted, killed with SIGKILL, and given
/// damaged, torn and foreign journals, on real files.
@Suite(.serialized) struct JournalTests {
    /// A temporary folder for the journal and the mail files.
    private struct Folders {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID().uuidString)")
        var data: String { root.appendingPathComponent("data").path }
        /// The first segment: the whole journal until a snapshot is written.
        var journal: String { data + "/journal-000000000000.log" }
        let mail: MailFolder

        init() throws {
            mail = try MailFolder.makeTemporary()
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        }

        func remove() {
            mail.remove()
            try? FileManager.default.removeItem(at: root)
        }
    }

    private func environment(_ folders: Folders, _ extra: [String: String] = [:]) -> [String: String] {
        [
            "MAIL_TRANSPORT": "file", "MAIL_DIR": folders.mail.path, "TCP_PORT": "0", "BIND_ADDRESS": "127.0.0.1",
            "DATA_DIR": folders.data, "ADMIN_EMAILS": "boss@example.com", "LOG_LEVEL": "info",
            "OTP_REQUESTS_PER_IP_PER_HOUR": "10000", "CONNECTIONS_PER_IP_PER_MINUTE": "10000", "HISTORY_SIZE": "10000",
            "MESSAGE_BURST": "10000", "MESSAGES_PER_SECOND": "10000",
        ].merging(extra) { $1 }
    }

    private func login(
        _ name: String, port: Int, from source: String, folders: Folders, group: MultiThreadedEventLoopGroup
    ) async throws -> TestClient {
        try await EndToEndTests.login(name, port: port, from: source, mail: folders.mail, group: group)
    }

    @Test func aResumeTokenOutlivesAKillAndIsKeptOnlyAsItsHash() async throws {
        let folders = try Folders()
        defer { folders.remove() }
        let group = MultiThreadedEventLoopGroup.singleton
        let first = try ServerProcess.start(environment: environment(folders))
        defer { first.kill() }
        var port = try await first.waitForPort()
        let alice = try await login("alice", port: port, from: "127.0.0.2", folders: folders, group: group)
        try await alice.send("/join #den")
        try await alice.readUntil("*** You joined #den ***")
        try await alice.send("/token")
        let line = try await alice.readLine()
        #expect(line.hasPrefix("*** Resume token: "))
        let token = String(line.dropFirst("*** Resume token: ".count).dropLast(4))
        // SIGKILL: nothing is written on the way out; the token must already be on disk.
        first.kill()
        _ = try await first.waitForExit(timeout: .seconds(20))

        let second = try ServerProcess.start(environment: environment(folders))
        defer { second.kill() }
        port = try await second.waitForPort()
        let back = try await TestClient.connect(port: port, from: "127.0.0.2", group: group)
        try await back.readUntil(ServerLine.emailPrompt)
        try await back.send("/resume \(token)")
        #expect(
            try await back.readLines(2) == ["*** Welcome back, alice! ***", "*** You joined #den ***"])
        // Only the hash is on disk, and neither run logged the token.
        for file in try FileManager.default.contentsOfDirectory(atPath: folders.data) {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: folders.data + "/" + file))
            #expect(bytes.range(of: Data(token.utf8)) == nil, "\(file)")
        }
        #expect(!first.log.contains(token) && !second.log.contains(token))
        second.terminate()
        _ = try await second.waitForExit(timeout: .seconds(20))
    }

    @Test func aRestartKeepsABanTheHistoryAndTheCodeThrottles() async throws {
        let folders = try Folders()
        defer { folders.remove() }
        let group = MultiThreadedEventLoopGroup.singleton
        let first = try ServerProcess.start(environment: environment(folders))
        defer { first.kill() }
        var port = try await first.waitForPort()
        let boss = try await login("boss", port: port, from: "127.0.0.2", folders: folders, group: group)
        let alice = try await login("alice", port: port, from: "127.0.0.3", folders: folders, group: group)
        try await alice.send("remember me")
        try await boss.readUntil("[alice]: remember me")
        // A private room with its owner, a topic and an invitation, left empty by the restart.
        try await boss.send("/create #den private")
        try await boss.readUntil("*** You joined #den ***")
        try await boss.send("/topic kept")
        try await boss.readUntil(ServerLine.topicSet(by: "boss", to: "kept"))
        try await boss.send("/invite alice")
        try await boss.readUntil("*** You invited alice to #den ***")
        try await boss.send("/leave")
        try await boss.readUntil("*** You left #den and returned to #general ***")
        try await boss.send("/ban alice")
        try await boss.readUntil(ServerLine.banned("alice", minutes: 60))
        _ = try await alice.waitForClose()
        // A code asked for and not used: the next one for that address must wait.
        let dave = try await TestClient.connect(port: port, from: "127.0.0.4", group: group)
        try await dave.readUntil(ServerLine.emailPrompt)
        try await dave.send("dave@example.com")
        try await dave.readUntil("*** Enter OTP code: ***")
        first.terminate()
        #expect(try await first.waitForExit(timeout: .seconds(20)) == 0)

        let second = try ServerProcess.start(environment: environment(folders))
        defer { second.kill() }
        port = try await second.waitForPort()
        #expect(second.log.contains("Journal replayed"))
        // Nobody is online after a restart: the replay released the last run's connections.
        let carol = try await TestClient.connect(port: port, from: "127.0.0.5", group: group)
        try await carol.readUntil(ServerLine.emailPrompt)
        try await carol.send("carol@example.com")
        try await carol.readUntil("*** Enter OTP code: ***")
        try await carol.send(try await folders.mail.code(for: "carol@example.com", mailIndex: 0))
        try await carol.readUntil("*** OTP verified successfully! ***")
        _ = try await carol.readLine()
        try await carol.send("carol")
        let welcome = try await carol.readUntil("*** ---------------------------- ***")
        #expect(welcome.contains("[alice]: remember me"), "\(welcome)")
        try await carol.send("/users")
        #expect(try await carol.readLines(2) == ["Online Users (1):", "  - carol (you)"])
        try await carol.send("/rooms")
        // carol is not invited: the private room is not hers to see.
        #expect(
            try await carol.readLines(2) == ["Available Rooms (1):", "  - #general [public] (1 members) (current)"])
        // The ban holds: alice's address is refused at once.
        let banned = try await TestClient.connect(port: port, from: "127.0.0.3", group: group)
        #expect(try await banned.waitForClose() == [UserError.banned.line])
        // The throttle holds: dave's next code waits out OTP_REQUEST_INTERVAL_SECONDS.
        let daveAgain = try await TestClient.connect(port: port, from: "127.0.0.6", group: group)
        try await daveAgain.readUntil(ServerLine.emailPrompt)
        try await daveAgain.send("dave@example.com")
        let answer = try await daveAgain.readLines(2)
        #expect(answer[1].hasPrefix("ERROR: Too many codes requested. Try again in "), "\(answer)")
        // The room's owner, under another name, finds it as it was, and owns it.
        let chief = try await EndToEndTests.login(
            "chief", port: port, from: "127.0.0.7", mail: folders.mail, group: MultiThreadedEventLoopGroup.singleton,
            email: "boss@example.com", mailIndex: 1)
        try await chief.send("/join #den")
        let entered = try await chief.readUntil(ServerLine.topic("kept", of: "#den"))
        #expect(entered.contains("*** You joined #den ***"), "\(entered)")
        try await chief.send("/who")
        #expect(try await chief.readLines(2) == ["Members of #den (1):", "  - chief (owner) (you)"])
        second.terminate()
        #expect(try await second.waitForExit(timeout: .seconds(20)) == 0)
    }

    /// `kill -9` while two users chat, again and again: every line anyone received (or whose
    /// echo its sender got) is in the history afterwards, in order, once. In both modes: a
    /// crash of the process loses nothing the kernel was given, and `interval` gives it each
    /// record before the command is applied.
    @Test(arguments: ["always", "interval"])
    func sigkillLosesNoLineAnyoneSaw(fsync: String) async throws {
        let folders = try Folders()
        defer { folders.remove() }
        let group = MultiThreadedEventLoopGroup.singleton
        for round in 1...4 {
            let server = try ServerProcess.start(environment: environment(folders, ["DATA_FSYNC": fsync]))
            defer { server.kill() }
            let port = try await server.waitForPort()
            let reader = try await login(
                "reader\(round)", port: port, from: "127.0.1.\(round)", folders: folders, group: group)
            let sender = try await login(
                "sender\(round)", port: port, from: "127.0.2.\(round)", folders: folders, group: group)
            try await reader.readUntil("*** sender\(round) joined the room ***")
            // Lines go out without waiting; the kill comes while they are in flight.
            for number in 1...2000 { try await sender.send("line \(number)") }
            let seen = try await reader.readUntil("[sender\(round)]: line 50") + ["[sender\(round)]: line 50"]
            server.kill()
            _ = try await server.waitForExit(timeout: .seconds(20))
            var received = seen.filter { $0.hasPrefix("[sender\(round)]: ") }
            received += try await reader.waitForClose().filter { $0.hasPrefix("[sender\(round)]: ") }
            let echoed = try await sender.waitForClose().filter { $0.hasPrefix("[sender\(round)]: ") }

            let again = try ServerProcess.start(environment: environment(folders, ["DATA_FSYNC": fsync]))
            defer { again.kill() }
            let history = try await historySeen(
                by: "checker\(round)", port: try await again.waitForPort(), from: "127.0.3.\(round)", folders: folders
            ).filter { $0.hasPrefix("[sender\(round)]: ") }
            // In the history, in order and once: everything seen, and maybe more that was
            // journaled but not yet sent when the process died.
            #expect(history == (1...history.count).map { "[sender\(round)]: line \($0)" }, "round \(round)")
            #expect(history.count >= max(received.count, echoed.count), "round \(round): \(history.count) kept")
            #expect(received == Array(history.prefix(received.count)), "round \(round)")
            again.terminate()
            _ = try await again.waitForExit(timeout: .seconds(20))
        }
    }

    @Test func aTornTailIsCutOffAndDamageInTheMiddleStopsTheStart() async throws {
        let folders = try Folders()
        defer { folders.remove() }
        let group = MultiThreadedEventLoopGroup.singleton
        let first = try ServerProcess.start(environment: environment(folders))
        defer { first.kill() }
        let alice = try await login(
            "alice", port: try await first.waitForPort(), from: "127.0.0.2", folders: folders, group: group)
        try await alice.send("kept")
        try await alice.readUntil("[alice]: kept")
        first.terminate()
        #expect(try await first.waitForExit(timeout: .seconds(20)) == 0)
        let whole = try Data(contentsOf: URL(fileURLWithPath: folders.journal))

        // A record cut short after the last whole one: cut off, with a warning naming where.
        try (whole + Data([0xC7, 0x4A, 0x40, 0, 0, 0, 1, 2, 3])).write(to: URL(fileURLWithPath: folders.journal))
        let second = try ServerProcess.start(environment: environment(folders))
        defer { second.kill() }
        let port = try await second.waitForPort()
        #expect(second.log.contains("offset=\(whole.count)") && second.log.contains("it is cut off"), "\(second.log)")
        let bob = try await login("bob", port: port, from: "127.0.0.3", folders: folders, group: group)
        _ = bob
        second.terminate()
        #expect(try await second.waitForExit(timeout: .seconds(20)) == 0)

        // A flipped byte in the first record, with good ones after it: the start stops.
        var damaged = try Data(contentsOf: URL(fileURLWithPath: folders.journal))
        let offset = JournalFormat.header.count + JournalFormat.frameOverhead + 3
        damaged[offset] ^= 0x01
        try damaged.write(to: URL(fileURLWithPath: folders.journal))
        let third = try ServerProcess.start(environment: environment(folders))
        defer { third.kill() }
        #expect(try await third.waitForExit(timeout: .seconds(20)) != 0)
        #expect(
            third.log.contains("the journal \(folders.journal) is damaged at byte \(JournalFormat.header.count)"),
            "\(third.log)")
        // Nothing on disk was changed by the refused start.
        #expect(try Data(contentsOf: URL(fileURLWithPath: folders.journal)) == damaged)
    }

    /// Logs `name` in on a server started from the folder and returns the history it is
    /// shown on joining #general.
    private func historySeen(
        by name: String, port: Int, from source: String, folders: Folders
    ) async throws -> [String] {
        let client = try await TestClient.connect(
            port: port, from: source, group: MultiThreadedEventLoopGroup.singleton)
        try await client.readUntil(ServerLine.emailPrompt)
        try await client.send("\(name)@example.com")
        try await client.readUntil("*** Enter OTP code: ***")
        try await client.send(try await folders.mail.code(for: "\(name)@example.com", mailIndex: 0))
        try await client.readUntil("*** OTP verified successfully! ***")
        _ = try await client.readLine()
        try await client.send(name)
        let lines = try await client.readUntil("*** ---------------------------- ***")
        await client.close()
        return lines.filter { $0.hasPrefix("[") }
    }

    /// Snapshots bound what a start replays and what the folder keeps; a damaged newest one
    /// stops the start, or is passed over with `DATA_RECOVERY=salvage` for the one before it.
    @Test func snapshotsBoundTheReplayAndADamagedOneIsRefusedOrSalvaged() async throws {
        let folders = try Folders()
        defer { folders.remove() }
        let settings = environment(folders, ["DATA_SNAPSHOT_SECONDS": "1"])
        let first = try ServerProcess.start(environment: settings)
        defer { first.kill() }
        let port = try await first.waitForPort()
        let alice = try await login(
            "alice", port: port, from: "127.0.0.2", folders: folders, group: MultiThreadedEventLoopGroup.singleton)
        var written: [String] = []
        for round in 1...3 {
            for number in 1...5 {
                try await alice.send("round \(round) line \(number)")
                written.append("[alice]: round \(round) line \(number)")
            }
            try await alice.readUntil("[alice]: round \(round) line 5")
            // A snapshot after each round's lines.
            let snapshots = first.log.components(separatedBy: "Snapshot written").count - 1
            #expect(
                try await poll(timeout: .seconds(10)) {
                    first.log.components(separatedBy: "Snapshot written").count - 1 > snapshots
                })
        }
        first.terminate()
        #expect(try await first.waitForExit(timeout: .seconds(20)) == 0)
        let (segments, snapshots) = try listing(folders.data)
        // The newest snapshot and the one before it, and the segments from that one on.
        #expect(snapshots.count == 2, "\(snapshots)")
        #expect(segments.first == snapshots.first, "\(segments) \(snapshots)")

        let second = try ServerProcess.start(environment: settings)
        defer { second.kill() }
        #expect(
            try await historySeen(by: "bob", port: try await second.waitForPort(), from: "127.0.0.3", folders: folders)
                == written)
        let replayed = try #require(Int(try await second.waitForLog(#"records_replayed=(\d+)"#)))
        #expect(replayed < 15, "a start replays the journal after the newest snapshot only (\(replayed))")
        second.terminate()
        #expect(try await second.waitForExit(timeout: .seconds(20)) == 0)

        // The newest snapshot damaged: the start stops, naming it.
        let (_, kept) = try listing(folders.data)
        let newest = folders.data + "/snapshot-" + (kept.last ?? "") + ".snap"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: newest))
        bytes[bytes.count - 2] ^= 0x20
        try bytes.write(to: URL(fileURLWithPath: newest))
        let refused = try ServerProcess.start(environment: environment(folders))
        defer { refused.kill() }
        #expect(try await refused.waitForExit(timeout: .seconds(20)) != 0)
        #expect(refused.log.contains("the snapshot \(newest) is damaged"), "\(refused.log)")
        // Salvaged: the snapshot before it, and the journal since, hold everything.
        let salvaged = try ServerProcess.start(environment: environment(folders, ["DATA_RECOVERY": "salvage"]))
        defer { salvaged.kill() }
        let salvagedPort = try await salvaged.waitForPort()
        #expect(salvaged.log.contains("A damaged snapshot is passed over"))
        #expect(try await historySeen(by: "carol", port: salvagedPort, from: "127.0.0.4", folders: folders) == written)
        salvaged.terminate()
        #expect(try await salvaged.waitForExit(timeout: .seconds(20)) == 0)
    }

    /// Snapshots taken while lines keep coming: each cuts the journal exactly where its
    /// state ends, so a start from the newest one and the segments after it replays every
    /// line once, in order, in both modes.
    @Test(arguments: ["interval", "always"])
    func snapshotsTakenWhileLinesFlowLoseAndRepeatNothing(fsync: String) async throws {
        let folders = try Folders()
        defer { folders.remove() }
        let settings = environment(
            folders, ["DATA_FSYNC": fsync, "DATA_SNAPSHOT_SECONDS": "1", "DATA_SNAPSHOT_ENTRIES": "1000"])
        let first = try ServerProcess.start(environment: settings)
        defer { first.kill() }
        let port = try await first.waitForPort()
        let alice = try await login(
            "alice", port: port, from: "127.0.0.2", folders: folders, group: MultiThreadedEventLoopGroup.singleton)
        var written: [String] = []
        // Bursts of lines until three snapshots were written while they flowed.
        var burst = 0
        while first.log.components(separatedBy: "Snapshot written").count - 1 < 3 {
            burst += 1
            try #require(burst <= 400, "three snapshots within 400 bursts")
            for number in 1...200 {
                try await alice.send("burst \(burst) line \(number)")
                written.append("[alice]: burst \(burst) line \(number)")
            }
            try await alice.readUntil("[alice]: burst \(burst) line 200")
        }
        first.terminate()
        #expect(try await first.waitForExit(timeout: .seconds(20)) == 0)

        let second = try ServerProcess.start(environment: settings)
        defer { second.kill() }
        let history = try await historySeen(
            by: "bob", port: try await second.waitForPort(), from: "127.0.0.3", folders: folders)
        // HISTORY_SIZE (10 000) bounds what a join shows: the newest lines, every one of them.
        #expect(history.count == min(written.count, 10_000), "\(history.count) lines shown of \(written.count)")
        #expect(history == Array(written.suffix(history.count)))
        second.terminate()
        #expect(try await second.waitForExit(timeout: .seconds(20)) == 0)
    }

    /// The segment and snapshot files of a folder, by name, in order.
    private func listing(_ folder: String) throws -> (segments: [String], snapshots: [String]) {
        let names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        return (
            names.filter { $0.hasPrefix("journal-") && $0.hasSuffix(".log") }.map {
                String($0.dropFirst(8).dropLast(4))
            },
            names.filter { $0.hasPrefix("snapshot-") && $0.hasSuffix(".snap") }.map {
                String($0.dropFirst(9).dropLast(5))
            }
        )
    }

    /// A disk that takes no more (a file size limit on the running process, set with
    /// `prlimit`): commands that change the chat get the outage line, once logged; reading
    /// goes on; once the limit is lifted, writing resumes by itself. In both modes: they
    /// write on different threads.
    @Test(arguments: ["always", "interval"])
    func aFullDiskRefusesChangesUntilThereIsRoomAgain(fsync: String) async throws {
        let folders = try Folders()
        defer { folders.remove() }
        let server = try ServerProcess.start(environment: environment(folders, ["DATA_FSYNC": fsync]))
        defer { server.kill() }
        let port = try await server.waitForPort()
        let alice = try await login(
            "alice", port: port, from: "127.0.0.2", folders: folders, group: MultiThreadedEventLoopGroup.singleton)
        try await alice.send("before")
        try await alice.readUntil("[alice]: before")
        let size = try FileManager.default.attributesOfItem(atPath: folders.journal)[.size] as? Int ?? 0
        try limitFileSize(of: server.pid, to: "\(size)")
        let unavailable = "ERROR: The chat is briefly unavailable. Please try again in a moment."
        try await alice.send("lost")
        #expect(try await alice.readLine() == unavailable)
        try await alice.send("/create #full")
        #expect(try await alice.readLine() == unavailable)
        try await alice.send("/users")
        #expect(try await alice.readLines(2) == ["Online Users (1):", "  - alice (you)"])
        #expect(server.log.components(separatedBy: "Cannot write the journal").count - 1 == 1)
        // Nothing half-written is left behind.
        #expect(try FileManager.default.attributesOfItem(atPath: folders.journal)[.size] as? Int == size)

        try limitFileSize(of: server.pid, to: "unlimited")
        try await alice.send("after")
        #expect(try await alice.readLine() == "[alice]: after")
        // Logged before the echo went out; its line may still be in the pipe the test reads.
        _ = try await server.waitForLog("(Writing the journal again)", timeout: .seconds(10))
        server.terminate()
        #expect(try await server.waitForExit(timeout: .seconds(20)) == 0)
        let again = try ServerProcess.start(environment: environment(folders, ["DATA_FSYNC": fsync]))
        defer { again.kill() }
        #expect(
            try await historySeen(by: "bob", port: try await again.waitForPort(), from: "127.0.0.3", folders: folders)
                == ["[alice]: before", "[alice]: after"])
        again.terminate()
        _ = try await again.waitForExit(timeout: .seconds(20))
    }

    private func limitFileSize(of pid: Int32, to limit: String) throws {
        let prlimit = try #require(
            ["/usr/bin/prlimit", "/bin/prlimit"].first { FileManager.default.isExecutableFile(atPath: $0) })
        let process = Process()
        process.executableURL = URL(fileURLWithPath: prlimit)
        // The soft limit only: lifting it again needs no privilege.
        process.arguments = ["--pid", "\(pid)", "--fsize=\(limit):unlimited"]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    /// A server on `folders` that writes a snapshot every second (at `debug`, to show its
    /// retries), with alice logged in right after one snapshot and her line "before" echoed.
    private func startWithASnapshotEverySecond(
        _ folders: Folders, user: (uid: UInt32, gid: UInt32)? = nil
    ) async throws -> (ServerProcess, TestClient) {
        let settings = ["DATA_SNAPSHOT_SECONDS": "1", "LOG_LEVEL": "debug"]
        let server = try ServerProcess.start(environment: environment(folders, settings), user: user)
        do {
            let port = try await server.waitForPort()
            let alice = try await login(
                "alice", port: port, from: "127.0.0.2", folders: folders, group: MultiThreadedEventLoopGroup.singleton)
            _ = try await server.waitForLog("(Snapshot written)", timeout: .seconds(10))
            try await alice.send("before")
            try await alice.readUntil("[alice]: before")
            return (server, alice)
        } catch {
            server.kill()
            throw error
        }
    }

    /// A snapshot due while the disk takes nothing (a file size limit of 0: not even a new
    /// segment's header) is tried again every second; its error is logged once, and once
    /// there is room a snapshot is written and the episode's end is logged.
    @Test func aSnapshotDueOnAFullDiskIsLoggedOncePerEpisode() async throws {
        let folders = try Folders()
        defer { folders.remove() }
        let (server, alice) = try await startWithASnapshotEverySecond(folders)
        defer { server.kill() }
        // Right after a snapshot, a record for the next one, then the limit: the next is due
        // a second later, with the disk full.
        try limitFileSize(of: server.pid, to: "0")
        // The first try and two more (one a second): the first an error, the others at debug level.
        let failures = {
            server.log.split(separator: "\n").filter { $0.contains("Cannot begin a journal segment") }
        }
        #expect(try await poll(every: .milliseconds(100), timeout: .seconds(10)) { failures().count >= 3 })
        #expect(failures().count { $0.contains(" error ") } == 1, "\(failures())")
        #expect(failures().count { $0.contains(" debug ") } >= 2, "\(failures())")
        let written = server.log.components(separatedBy: "Snapshot written").count - 1

        try limitFileSize(of: server.pid, to: "unlimited")
        _ = try await server.waitForLog("(Writing snapshots again)", timeout: .seconds(10))
        _ = try await poll(every: .milliseconds(50), timeout: .seconds(10)) {
            server.log.components(separatedBy: "Snapshot written").count - 1 > written
        }
        #expect(server.log.components(separatedBy: "Snapshot written").count - 1 > written)
        try await alice.send("after")
        try await alice.readUntil("[alice]: after")
        server.terminate()
        #expect(try await server.waitForExit(timeout: .seconds(20)) == 0)
    }

    /// A folder the server may not write: a start is refused, naming the file, and leaves
    /// the folder as it was. Made read-only while the server runs, the segment it has open
    /// goes on taking every line (permissions are checked when a file is opened), and only
    /// the snapshots that fall due wait, their error logged once, until the folder can be
    /// written again; a restart then has every line. The server runs as `nobody` when the
    /// test runs as root, whom permissions do not stop.
    @Test func aFolderThatCannotBeWrittenRefusesTheStartAndHoldsUpOnlySnapshots() async throws {
        let folders = try Folders()
        defer { folders.remove() }
        let user = UnprivilegedRun.user
        try FileManager.default.createDirectory(atPath: folders.data, withIntermediateDirectories: false)
        if let user {
            for path in [folders.root.path, folders.data, folders.mail.path] {
                try FileManager.default.setAttributes(
                    [.ownerAccountID: user.uid, .groupOwnerAccountID: user.gid], ofItemAtPath: path)
            }
        }
        func permit(_ mode: Int) throws {
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: folders.data)
        }
        try permit(0o500)
        let refused = try ServerProcess.start(environment: environment(folders), user: user)
        defer { refused.kill() }
        #expect(try await refused.waitForExit(timeout: .seconds(20)) != 0)
        #expect(refused.log.contains("cannot open \(folders.data)/lock: Permission denied"), "\(refused.log)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folders.data).isEmpty)

        try permit(0o700)
        let (server, alice) = try await startWithASnapshotEverySecond(folders, user: user)
        defer { server.kill() }
        try permit(0o500)
        let failures = {
            server.log.split(separator: "\n").filter {
                $0.contains("Cannot begin a journal segment") || $0.contains("Snapshot not written")
            }
        }
        for line in 1...3 {
            try await alice.send("while read-only \(line)")
            #expect(try await alice.readLine() == "[alice]: while read-only \(line)")
        }
        #expect(try await poll(every: .milliseconds(100), timeout: .seconds(10)) { failures().count >= 3 })
        #expect(failures().count { $0.contains(" error ") } == 1, "\(failures())")
        #expect(!server.log.contains("Cannot write the journal"), "\(server.log)")

        try permit(0o700)
        _ = try await server.waitForLog("(Writing snapshots again)", timeout: .seconds(10))
        try await alice.send("after")
        try await alice.readUntil("[alice]: after")
        server.terminate()
        #expect(try await server.waitForExit(timeout: .seconds(20)) == 0, "\(server.log)")

        let again = try ServerProcess.start(environment: environment(folders), user: user)
        defer { again.kill() }
        #expect(
            try await historySeen(by: "bob", port: try await again.waitForPort(), from: "127.0.0.3", folders: folders)
                == ["[alice]: before"] + (1...3).map { "[alice]: while read-only \($0)" } + ["[alice]: after"])
        again.terminate()
        _ = try await again.waitForExit(timeout: .seconds(20))
    }

    @Test func aSecondProcessOnTheSameFolderAndANewerJournalAreRefused() async throws {
        let folders = try Folders()
        defer { folders.remove() }
        let first = try ServerProcess.start(environment: environment(folders))
        defer { first.kill() }
        _ = try await first.waitForPort()
        let second = try ServerProcess.start(environment: environment(folders))
        defer { second.kill() }
        #expect(try await second.waitForExit(timeout: .seconds(20)) != 0)
        let pid = try String(contentsOfFile: folders.data + "/lock", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(second.log.contains("is in use by another chat-server (PID \(pid))"), "\(second.log)")
        first.terminate()
        #expect(try await first.waitForExit(timeout: .seconds(20)) == 0, "\(first.log)")

        try Data("chat-journal/9\n".utf8).write(to: URL(fileURLWithPath: folders.journal))
        let newer = try ServerProcess.start(environment: environment(folders))
        defer { newer.kill() }
        #expect(try await newer.waitForExit(timeout: .seconds(20)) != 0)
        #expect(newer.log.contains("it is of format 9, this version reads 1"), "\(newer.log)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: folders.journal)) == Data("chat-journal/9\n".utf8))

        // A snapshot a newer release wrote is refused the same way, and left as it is.
        try FileManager.default.removeItem(atPath: folders.journal)
        let snapshot = folders.data + "/snapshot-000000000000.snap"
        let future = Data("chat-snapshot-file/9\n".utf8) + Data(repeating: 0x7B, count: 32)
        try future.write(to: URL(fileURLWithPath: snapshot))
        let newerSnapshot = try ServerProcess.start(environment: environment(folders))
        defer { newerSnapshot.kill() }
        #expect(try await newerSnapshot.waitForExit(timeout: .seconds(20)) != 0)
        #expect(newerSnapshot.log.contains("snapshot-000000000000.snap"), "\(newerSnapshot.log)")
        #expect(newerSnapshot.log.contains("of format 9, this version reads 1"), "\(newerSnapshot.log)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: snapshot)) == future)
    }

    @Test func theFolderAndFilesAreKeptFromOthers() async throws {
        let folders = try Folders()
        defer { folders.remove() }
        let server = try ServerProcess.start(environment: environment(folders))
        defer { server.kill() }
        _ = try await server.waitForPort()
        let folder = try FileManager.default.attributesOfItem(atPath: folders.data)
        #expect((folder[.posixPermissions] as? Int) == 0o700)
        #expect(!server.log.contains("State is kept in memory only"), "\(server.log)")
        for file in [folders.journal, folders.data + "/lock"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: file)
            #expect((attributes[.posixPermissions] as? Int) == 0o600, "\(file)")
        }
        server.terminate()
        _ = try await server.waitForExit(timeout: .seconds(20))
    }
}
