import Foundation
import NIOConcurrencyHelpers

/// Running a built executable as an ordinary user (`nobody`) from a test that runs as root,
/// through `setpriv`: file permissions and socket options then apply to it as they do to an
/// operator's service or a user's client.
///
/// The build folder may be where `nobody` cannot reach it (a clone under `/root`), so the
/// executable, and the ThreadSanitizer suppressions a child under TSan reads, are copied
/// once into a folder anyone may read.
public enum UnprivilegedRun {
    public static let nobody: (uid: UInt32, gid: UInt32) = (65534, 65534)

    /// `nobody` when the test runs as root; `nil` when it does not (the test's own user is
    /// ordinary already).
    public static var user: (uid: UInt32, gid: UInt32)? { getuid() == 0 ? nobody : nil }

    private static let copies = NIOLockedValueBox([String: String]())

    /// The folder of this test process's copies, removed as the process exits.
    private static let folder: URL = {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("chat-tests-for-others-\(getpid())")
        atexit {
            try? FileManager.default.removeItem(
                at: FileManager.default.temporaryDirectory.appendingPathComponent("chat-tests-for-others-\(getpid())"))
        }
        return folder
    }()

    /// The `setpriv` command line that runs `executable` with `arguments` as `user`, the
    /// executable copied where that user can run it.
    public static func command(
        _ executable: String, arguments: [String], as user: (uid: UInt32, gid: UInt32)
    ) throws -> (executable: URL, arguments: [String]) {
        let candidates = ["/usr/bin/setpriv", "/bin/setpriv"]
        guard let setpriv = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw TestFailure("setpriv (util-linux) is not installed")
        }
        let arguments =
            ["--reuid=\(user.uid)", "--regid=\(user.gid)", "--clear-groups", "--", try readableCopy(of: executable)]
            + arguments
        return (URL(fileURLWithPath: setpriv), arguments)
    }

    /// `environment` with its ThreadSanitizer suppressions file, if any, replaced by a copy
    /// anyone may read.
    public static func environment(_ environment: [String: String]) throws -> [String: String] {
        guard let options = environment["TSAN_OPTIONS"] else { return environment }
        var rewritten: [String] = []
        for option in options.split(separator: " ").map(String.init) {
            if option.hasPrefix("suppressions=") {
                rewritten.append(
                    "suppressions=" + (try readableCopy(of: String(option.dropFirst("suppressions=".count)))))
            } else {
                rewritten.append(option)
            }
        }
        var environment = environment
        environment["TSAN_OPTIONS"] = rewritten.joined(separator: " ")
        return environment
    }

    /// A copy of the file, mode 0755, in a folder anyone may enter, made once per test process.
    private static func readableCopy(of path: String) throws -> String {
        try copies.withLockedValue { copies in
            if let copy = copies[path] { return copy }
            let folder = Self.folder.appendingPathComponent("\(copies.count)")
            try FileManager.default.createDirectory(
                at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: Self.folder.path)
            let copy = folder.appendingPathComponent(URL(fileURLWithPath: path).lastPathComponent).path
            try? FileManager.default.removeItem(atPath: copy)
            try FileManager.default.copyItem(atPath: path, toPath: copy)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: copy)
            copies[path] = copy
            return copy
        }
    }
}
