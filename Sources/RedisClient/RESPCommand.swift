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
            Arguments.write(argument, to: &buffer)
        }
        self.encoded = buffer
        self.name = arguments.first.map { String(decoding: $0, as: UTF8.self).uppercased() } ?? ""
    }

    /// A command that starts with `head` and goes on with the arguments `write` adds one by
    /// one. For a command sent often whose first arguments never change (a script and its
    /// keys): those are encoded once, and the rest without an array of arrays first.
    /// - Parameter capacity: the bytes the rest will take, about (each argument's and 16).
    public init(_ head: Arguments, capacity: Int = 0, then write: (inout Arguments) -> Void) {
        var rest = Arguments(capacity: capacity)
        write(&rest)
        let size = head.encoded.readableBytes + rest.encoded.readableBytes + 16
        var buffer = ByteBufferAllocator().buffer(capacity: size)
        buffer.writeString("*\(head.count + rest.count)\r\n")
        buffer.writeImmutableBuffer(head.encoded)
        buffer.writeImmutableBuffer(rest.encoded)
        self.encoded = buffer
        self.name = head.name
    }

    /// Arguments encoded as they are added, not yet a command (no count before them).
    public struct Arguments: Sendable {
        fileprivate var encoded: ByteBuffer
        public private(set) var count = 0
        fileprivate var name = ""

        public init(capacity: Int = 0) {
            encoded = ByteBufferAllocator().buffer(capacity: capacity)
        }

        /// Arguments encoded once, the first of which names the command.
        public init(_ arguments: [String]) {
            self.init(capacity: arguments.reduce(0) { $0 + $1.utf8.count + 16 })
            for argument in arguments { append(argument) }
            name = arguments.first?.uppercased() ?? ""
        }

        public mutating func append(_ argument: [UInt8]) {
            Self.write(argument, to: &encoded)
            count += 1
        }

        public mutating func append(_ argument: String) {
            Self.write(argument.utf8, to: &encoded)
            count += 1
        }

        public mutating func append(_ number: Int) {
            append(String(number))
        }

        fileprivate static func write(_ argument: some Collection<UInt8>, to buffer: inout ByteBuffer) {
            buffer.writeString("$\(argument.count)\r\n")
            buffer.writeBytes(argument)
            buffer.writeString("\r\n")
        }
    }
}
