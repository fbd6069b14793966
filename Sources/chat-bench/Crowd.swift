import Foundation
import NIOCore

/// The `crowd` mode: a share of a large crowd, held logged in and steered line by line from
/// standard input, so that a driver (Benchmarks/scale.py) can run several of these against
/// several nodes and ask all of them when a line reached the last member.
extension Bench {
    func hold(_ clients: [Connected], loginReport: Report) async throws {
        Self.answer(loginReport.summary)
        Self.answer(loginReport.json)
        for await command in Self.standardInputLines() {
            let (verb, rest) = Self.split(command)
            switch verb {
            case "watch":
                try await forEach(clients) { $0.watch(rest) }
                Self.answer(#"{"watching":true}"#)
            case "send":
                let (number, text) = Self.split(rest)
                guard let index = Int(number), clients.indices.contains(index) else {
                    Self.answer(#"{"error":"no such client"}"#)
                    break
                }
                let handler = clients[index].handler
                let sentAt = try await clients[index].channel.eventLoop.submit {
                    let now = NIODeadline.now().uptimeNanoseconds
                    handler.value.write(text)
                    return now
                }.get()
                Self.answer(#"{"sent_ns":\#(sentAt)}"#)
            case "report":
                Self.answer(try await crowdReport(clients))
            case "quit":
                return
            default:
                Self.answer(#"{"error":"unknown command"}"#)
            }
        }
    }

    /// What the crowd saw: how many received the watched text, the first and last arrival,
    /// how many are still connected, and the room departures they heard.
    private func crowdReport(_ clients: [Connected]) async throws -> String {
        var seen = 0
        var first = UInt64.max
        var last: UInt64 = 0
        var connected = 0
        var departures = 0
        var lastDeparture: UInt64 = 0
        for client in clients {
            let handler = client.handler
            let (arrived, isConnected, heard, heardLast) = try await client.channel.eventLoop.submit {
                let value = handler.value
                return (
                    value.watchedArrivedAt, value.disconnectedAt == nil, value.departuresHeard, value.lastDepartureAt
                )
            }.get()
            if let arrived {
                seen += 1
                first = min(first, arrived)
                last = max(last, arrived)
            }
            if isConnected { connected += 1 }
            departures += heard
            lastDeparture = max(lastDeparture, heardLast)
        }
        let object: [String: Any] = [
            "seen": seen, "first_ns": seen > 0 ? first : 0, "last_ns": last, "connected": connected,
            "departures": departures, "last_departure_ns": lastDeparture,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    private func forEach(_ clients: [Connected], _ body: @escaping @Sendable (BenchClient) -> Void) async throws {
        for client in clients {
            let handler = client.handler
            try await client.channel.eventLoop.submit { body(handler.value) }.get()
        }
    }

    /// Writes `line` at once. Not `print`: C's stdout is buffered in a pipe, and flushing
    /// every stream (`fflush(NULL)`) would wait for stdin's lock, held by the reading thread.
    private static func answer(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    private static func split(_ text: String) -> (String, String) {
        guard let space = text.firstIndex(of: " ") else { return (text, "") }
        return (String(text[..<space]), String(text[text.index(after: space)...]))
    }

    /// Standard input's lines, read on a thread of their own (reading blocks).
    private static func standardInputLines() -> AsyncStream<String> {
        AsyncStream { continuation in
            Thread.detachNewThread {
                while let line = readLine() { continuation.yield(line) }
                continuation.finish()
            }
        }
    }
}
