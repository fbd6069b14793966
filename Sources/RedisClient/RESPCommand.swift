import NIOCore

/// A command as Redis reads it: an array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`).
public struct RESPCommand: Sendable, Hashable {
    public var arguments: [[UInt8]]

    public init(_ arguments: [String]) {
        self.arguments = arguments.map { Array($0.utf8) }
    }

    public init(bytes arguments: [[UInt8]]) {
        self.arguments = arguments
    }

    /// The command's name, for logs (never its arguments: they may hold a password).
    public var name: String {
        arguments.first.map { String(decoding: $0, as: UTF8.self).uppercased() } ?? ""
    }

    /// Appends the command's wire form to `buffer`.
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeString("*\(arguments.count)\r\n")
        for argument in arguments {
            buffer.writeString("$\(argument.count)\r\n")
            buffer.writeBytes(argument)
            buffer.writeString("\r\n")
        }
    }
}
