import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The files of a journal folder (`DATA_DIR`), by plain POSIX calls, made at start-up and on
/// the journal's own queue, never on an event loop. Files are 0600 in a folder made 0700:
/// they hold the chat's history and its users' e-mail addresses.
///
/// A journal is kept in segments, each named by the position (the count of records before
/// it) of its first record, `journal-000000001234.log`; a snapshot by the position it
/// includes the journal up to, `snapshot-000000001234.snap`. A snapshot at position P is
/// taken when the segment starting at P begins.
enum JournalFiles {
    static func lock(in directory: String) -> String { directory + "/lock" }
    /// The next segment, prepared before a snapshot's cut names it for its position.
    static func nextSegment(in directory: String) -> String { directory + "/journal-next.tmp" }
    static func segment(at position: Int64, in directory: String) -> String {
        directory + "/journal-\(padded(position)).log"
    }
    static func snapshot(at position: Int64, in directory: String) -> String {
        directory + "/snapshot-\(padded(position)).snap"
    }

    private static func padded(_ position: Int64) -> String {
        let digits = String(position)
        return String(repeating: "0", count: max(0, 12 - digits.count)) + digits
    }

    /// The positions of the segments and of the snapshots in the folder, in order.
    static func listing(of directory: String) throws(JournalError) -> (segments: [Int64], snapshots: [Int64]) {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw .io("list", path: directory, errno: errno)
        }
        func positions(_ prefix: String, _ suffix: String) -> [Int64] {
            names.compactMap { name -> Int64? in
                guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
                let digits = name.dropFirst(prefix.count).dropLast(suffix.count)
                guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
                return Int64(digits)
            }.sorted()
        }
        return (positions("journal-", ".log"), positions("snapshot-", ".snap"))
    }

    /// Writes a whole file under a temporary name, syncs it and renames it into place, so
    /// that the name never holds half of it.
    static func writeAtomically(_ bytes: [UInt8], to path: String, in directory: String) throws(JournalError) {
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .io("create", path: temporary, errno: errno) }
        do {
            try write(bytes, to: descriptor, path: temporary)
            try sync(descriptor, path: temporary)
        } catch {
            close(descriptor)
            unlink(temporary)
            throw error
        }
        close(descriptor)
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw .io("rename", path: temporary, errno: code)
        }
        syncFolder(directory)
    }

    static func remove(_ path: String) {
        unlink(path)
    }

    /// Moves a file out of the journal's way, keeping it for the operator.
    static func setAside(_ path: String) throws(JournalError) {
        guard rename(path, path + ".set-aside") == 0 else { throw .io("rename", path: path, errno: errno) }
    }

    /// Creates the folder if it is missing and takes its lock, writing this process's PID
    /// into it; the lock lasts until the descriptor is closed or the process ends.
    /// - Returns: the lock's descriptor.
    /// - Throws: ``JournalError/inUse(directory:pid:)`` when another process holds it.
    static func takeLock(of directory: String) throws(JournalError) -> Int32 {
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw .io("create the folder", path: directory, errno: errno)
        }
        let path = lock(in: directory)
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .io("open", path: path, errno: errno) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? readAll(path)).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) } ?? ""
            close(descriptor)
            let pid = holder.trimmingCharacters(in: .whitespacesAndNewlines)
            throw .inUse(directory: directory, pid: pid.isEmpty ? "unknown" : pid)
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = try? write(pid, to: descriptor, path: path)
        return descriptor
    }

    /// Gives a file to `body` a piece at a time (a megabyte at most), in order.
    /// - Returns: `false` when there is no such file.
    static func readInPieces(_ path: String, _ body: ([UInt8]) throws -> Void) throws -> Bool {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 {
            if errno == ENOENT { return false }
            throw JournalError.io("open", path: path, errno: errno)
        }
        defer { close(descriptor) }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw JournalError.io("read", path: path, errno: errno)
            }
            if count == 0 { return true }
            try body(count == chunk.count ? chunk : Array(chunk[..<count]))
        }
    }

    /// A whole file, or `nil` when there is none.
    static func readAll(_ path: String) throws(JournalError) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 {
            if errno == ENOENT { return nil }
            throw .io("open", path: path, errno: errno)
        }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .io("read", path: path, errno: errno)
            }
            if count == 0 { return bytes }
            bytes += chunk[..<count]
        }
    }

    /// Opens a file for appending, creating it (0600) when it is missing.
    static func openForAppending(_ path: String) throws(JournalError) -> Int32 {
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .io("open", path: path, errno: errno) }
        return descriptor
    }

    /// Creates a file for appending (0600), emptying one of that name left from before.
    static func createForAppending(_ path: String) throws(JournalError) -> Int32 {
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .io("create", path: path, errno: errno) }
        return descriptor
    }

    /// Gives a file its name (replacing none: the name is new).
    static func move(_ path: String, to newPath: String) throws(JournalError) {
        guard Glibc.rename(path, newPath) == 0 else { throw .io("rename", path: path, errno: errno) }
    }

    static func write(_ bytes: [UInt8], to descriptor: Int32, path: String) throws(JournalError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                throw .io("write", path: path, errno: errno)
            }
            offset += written
        }
    }

    static func sync(_ descriptor: Int32, path: String) throws(JournalError) {
        guard fsync(descriptor) == 0 else { throw .io("sync", path: path, errno: errno) }
    }

    /// Makes a file's creation itself durable (its entry in the folder).
    static func syncFolder(_ directory: String) {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        close(descriptor)
    }

    static func truncate(_ path: String, to length: Int) throws(JournalError) {
        guard Glibc.truncate(path, off_t(length)) == 0 else { throw .io("truncate", path: path, errno: errno) }
    }
}
