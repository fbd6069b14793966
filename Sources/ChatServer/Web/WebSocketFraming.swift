import NIOCore
import NIOWebSocket

/// Frames as the server writes them (RFC 6455 §5.2): final, unmasked, with no extension.
enum WebSocketFraming {
    /// One frame: its header, then the payload.
    static func frame(_ opcode: WebSocketOpcode, _ payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: payload.readableBytes + 10)
        append(opcode, payload.readableBytesView, to: &buffer)
        return buffer
    }

    static func append(_ opcode: WebSocketOpcode, _ payload: ByteBufferView, to buffer: inout ByteBuffer) {
        buffer.writeInteger(0x80 | UInt8(webSocketOpcode: opcode))
        switch payload.count {
        case ..<126:
            buffer.writeInteger(UInt8(payload.count))
        case ...Int(UInt16.max):
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(payload.count))
        default:
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(payload.count))
        }
        buffer.writeBytes(payload)
    }

    /// The text frames of the last buffer of lines framed on this event loop. The hub
    /// writes the same buffer to every member of a room on a loop, one after another: all
    /// but the first get the frames already made, and the same bytes go out to each, as
    /// the same buffer does over TCP.
    ///
    /// `@unchecked Sendable`, safe because an instance is only ever reached through
    /// ``WebSocketLineHandler``'s `ThreadSpecificVariable`: each thread makes its own and
    /// only that thread reads or changes it (the type is `Sendable` only so that the
    /// thread-specific variable, a static shared by the threads, may hold it).
    final class Cache: @unchecked Sendable {
        /// The last buffer framed: held, so no other buffer can have its storage (and so
        /// its address) while it is here.
        private var lines: ByteBuffer?
        private var frames: ByteBuffer?

        /// Each line of `lines` (ending in `\n`; a last one without is a line too) as a
        /// text frame, all in one buffer.
        func textFrames(of lines: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
            if let last = self.lines, let frames, Self.isSame(last, lines) { return frames }
            var frames = allocator.buffer(capacity: lines.readableBytes + 16)
            var rest = lines.readableBytesView
            while !rest.isEmpty {
                let end = rest.firstIndex(of: UInt8(ascii: "\n")) ?? rest.endIndex
                WebSocketFraming.append(.text, rest[rest.startIndex..<end], to: &frames)
                rest = end == rest.endIndex ? rest[end...] : rest[rest.index(after: end)...]
            }
            self.lines = lines
            self.frames = frames
            return frames
        }

        /// The same bytes of the same storage.
        private static func isSame(_ a: ByteBuffer, _ b: ByteBuffer) -> Bool {
            guard a.readableBytes == b.readableBytes else { return false }
            return a.withUnsafeReadableBytes { a in b.withUnsafeReadableBytes { b in a.baseAddress == b.baseAddress } }
        }
    }
}
