import ChatClientCore
import ChatCore
import Foundation
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The client when standard input or output is not a terminal: every line from the server
/// goes to standard output (without control characters), every line of standard input goes to the server. When
/// the input ends, the client stops sending and prints what the server still sends until
/// it closes the connection.
struct PlainClient {
    let options: ClientOptions

    func run() async throws -> Int32 {
        let (events, continuation) = AsyncStream.makeStream(of: ClientEvent.self)
        let group = MultiThreadedEventLoopGroup.singleton
        let connection: ServerConnection
        do {
            connection = try await ServerConnection.connect(options, group: group, events: continuation)
        } catch {
            Output.error("cannot connect to \(options.endpoint): \(ConnectionFailure.describe(error))")
            return 1
        }
        StandardInput.start(continuation)
        var pending: [UInt8] = []
        var inputEnded = false
        var lastLine = ""
        for await event in events {
            switch event {
            case .line(let line):
                // The server sanitises what users write, but a client does not trust a
                // server with its terminal.
                Output.write(TextSanitizer.sanitize(line) + "\n")
                lastLine = line
            case .refused(let message):
                Output.error("cannot chat with \(options.endpoint): \(message)")
                return 1
            case .closedUnheard:
                Output.error("cannot chat with \(options.endpoint): \(ClientEvent.closedUnheardReason)")
                return 1
            case .disconnected(let reason):
                // Ending the input, or /quit, is the end the user asked for.
                let asked = inputEnded || lastLine == ServerLine.goodbye
                if !asked { Output.error("connection lost" + (reason.map { ": \($0)" } ?? "")) }
                return asked ? 0 : 1
            case .input(let bytes):
                pending.append(contentsOf: bytes)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    var line = pending[..<newline]
                    if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
                    connection.send(String(decoding: line, as: UTF8.self))
                    pending.removeSubrange(...newline)
                }
            case .inputClosed:
                if !pending.isEmpty { connection.send(String(decoding: pending, as: UTF8.self)) }
                pending.removeAll()
                inputEnded = true
                connection.finishSending()
            case .resized, .retry:
                break
            }
        }
        return 0
    }
}

/// Writes to the terminal (or pipe) directly: no buffering between the client and the screen.
enum Output {
    static func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { Glibc.write(1, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
    }

    static func error(_ text: String) {
        FileHandle.standardError.write(Data("chat-client: \(text)\n".utf8))
    }
}
