import NIOCore

/// A command as Redis reads it: an array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`),
/// encoded once, when it is made, straight into the buffer the connection writes.
public struct RESPCommand: Sendable, Hashable {
    /// The wire form.
    public let encoded: ByteBuffer
    /// The command's name, for logs (never its arguments: they may hold a password).
    public let name: String

    public init(_ arguments: [String]) {
        self.init(encoding: arguments.map(\.utf8))
    }

    public init(bytes arguments: [[UInt8]]) {
        self.init(encoding: arguments)
    }

    private init<Argument: Collection<UInt8>>(encoding arguments: [Argument]) {
        var buffer = ByteBufferAllocator().buffer(capacity: arguments.reduce(16) { $0 + $1.count + 16 })
        buffer.writeString("*\(arguments.count)\r\n")
        for argument in arguments {
            buffer.writeString("$\(argument.count)\r\n")
            buffer.writeBytes(argument)
            buffer.writeString("\r\n")
        }
        self.encoded = buffer
        self.name = arguments.first.map { String(decoding: $0, as: UTF8.self).uppercased() } ?? ""
    }
}
