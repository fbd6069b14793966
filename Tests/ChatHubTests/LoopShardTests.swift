import NIOCore
import NIOEmbedded
import Testing

@testable import ChatHub

/// One loop's shard on `EmbeddedChannel`s: what each member's connection is given to write
/// when several events wait in one drain.
@Suite struct LoopShardTests {
    /// Three members of room 1 on one embedded loop; the third ignores bob.
    private struct Room {
        let loop = EmbeddedEventLoop()
        let shard: LoopShard
        let channels: [EmbeddedChannel]

        init() throws {
            shard = LoopShard(index: 0, eventLoop: loop)
            var channels: [EmbeddedChannel] = []
            for id in SessionID(1)...3 {
                let channel = EmbeddedChannel(handler: WriteThrough(), loop: loop)
                let context = try channel.pipeline.syncOperations.context(handlerType: WriteThrough.self)
                let session = LocalSession(id: id, context: context)
                if id == 3 { session.ignoring.insert("Bob") }
                shard.attach(session)
                shard.post(.enterRoom(id, 1, [], history: []))
                channels.append(channel)
            }
            self.channels = channels
            loop.run()
        }

        /// What `channel` was given to write, one string per write.
        func writes(_ channel: EmbeddedChannel) throws -> [String] {
            var writes: [String] = []
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
                writes.append(String(buffer: buffer))
            }
            return writes
        }
    }

    private static func line(_ text: String) -> ByteBuffer { ByteBuffer(string: text + "\n") }

    @Test func aRunOfLinesForOneRoomIsOneWritePerMemberAndKeepsItsOrder() throws {
        let room = try Room()
        // One drain: three lines for room 1, a line for room 2 (nobody here), a private
        // message, then two more lines for room 1.
        room.shard.post(.room(1, Self.line("[alice]: one"), from: "alice"))
        room.shard.post(.room(1, Self.line("[bob]: two"), from: "bob"))
        room.shard.post(.room(1, Self.line("[alice]: three"), from: "alice"))
        room.shard.post(.room(2, Self.line("[erin]: elsewhere"), from: "erin"))
        room.shard.post(.privateMessage(1, Self.line("[bob]: [PM] psst"), from: "bob"))
        room.shard.post(.room(1, Self.line("[bob]: four"), from: "bob"))
        room.shard.post(.room(1, Self.line("*** topic ***"), from: nil))
        room.loop.run()

        // The runs leave as one write each; the private message stays between them.
        #expect(
            try room.writes(room.channels[0]) == [
                "[alice]: one\n[bob]: two\n[alice]: three\n", "[bob]: [PM] psst\n", "[bob]: four\n*** topic ***\n",
            ])
        #expect(
            try room.writes(room.channels[1]) == [
                "[alice]: one\n[bob]: two\n[alice]: three\n", "[bob]: four\n*** topic ***\n",
            ])
        // Who ignores bob gets the others' lines, in order, without bob's.
        #expect(try room.writes(room.channels[2]) == ["[alice]: one\n", "[alice]: three\n", "*** topic ***\n"])
    }

    @Test func aLoneLineIsWrittenAsItIs() throws {
        let room = try Room()
        let line = Self.line("[alice]: alone")
        room.shard.post(.room(1, line, from: "alice"))
        room.loop.run()
        for channel in room.channels {
            #expect(try room.writes(channel) == ["[alice]: alone\n"])
        }
    }
}

/// Gives each channel a context to write through, as the connection handler does.
private final class WriteThrough: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
}
