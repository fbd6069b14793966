import ChatTestSupport
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A program running in a real pseudo-terminal: a detached `tmux` session on a server of
/// its own (`-L`), driven with `send-keys` and read with `capture-pane`, as a person's
/// terminal would show it.
final class TerminalSession: Sendable {
    private let socket = "chat-test-\(UUID().uuidString.prefix(8))"

    static var tmux: String? {
        ["/usr/bin/tmux", "/bin/tmux"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Starts `command` (run by `sh -c`) in a window of the given size. When it ends, the
    /// shell prints its exit status (tmux's own record of a dead pane proved unreliable when
    /// the pane's process ends quickly) and waits, so the screen stays to be read.
    init(_ command: String, width: Int = 100, height: Int = 30) throws {
        try run([
            "new-session", "-d", "-s", "main", "-x", "\(width)", "-y", "\(height)", "sh", "-c",
            "\(command); echo \"[exit status $?]\"; exec sleep 600",
        ])
    }

    /// Types text literally (no key names).
    func type(_ text: String) throws {
        try run(["send-keys", "-t", "main", "-l", text])
    }

    /// Presses keys by tmux's names: `Enter`, `Tab`, `C-d`, `Left`, ...
    func press(_ keys: String...) throws {
        try run(["send-keys", "-t", "main"] + keys)
    }

    /// The screen's text (tmux leaves out spaces at the ends of lines); with `escapes`, with
    /// the colours' escape sequences.
    func screen(escapes: Bool = false) throws -> String {
        try run(["capture-pane", "-p", "-t", "main"] + (escapes ? ["-e"] : []))
    }

    /// The screen's last non-empty line (where the prompt is).
    func promptLine() throws -> String {
        try screen().split(separator: "\n").last.map(String.init) ?? ""
    }

    /// Waits (bounded) until the screen holds `text`; returns the screen.
    @discardableResult
    func waitFor(_ text: String, timeout: Duration = .seconds(10)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        var current = try screen()
        while !current.contains(text) {
            guard ContinuousClock.now < deadline else {
                throw TestFailure("the terminal never showed \(text.debugDescription); it shows:\n\(current)")
            }
            try await Task.sleep(for: .milliseconds(20))
            current = try screen()
        }
        return current
    }

    /// The program's exit status once it has ended, waiting (bounded) for it.
    func exitStatus(timeout: Duration = .seconds(10)) async throws -> Int {
        let screen = try await waitFor("[exit status ", timeout: timeout)
        guard let range = screen.range(of: #"\[exit status (\d+)\]"#, options: .regularExpression),
            let status = Int(screen[range].dropFirst("[exit status ".count).dropLast())
        else { throw TestFailure("no exit status on the screen:\n\(screen)") }
        return status
    }

    func close() {
        _ = try? run(["kill-server"])
    }

    @discardableResult
    private func run(_ arguments: [String]) throws -> String {
        guard let tmux = Self.tmux else { throw TestFailure("tmux is not installed (scripts/test.sh installs it)") }
        // posix_spawn and waitpid rather than Foundation's Process, to control the signal mask
        // (below) and to reap the client at once. Output goes to a file, not a pipe: `new-session` starts tmux's server, which
        // keeps the client's output open for as long as it runs.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tmux-\(UUID().uuidString).txt")
        defer { try? FileManager.default.removeItem(at: file) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, file.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = [tmux, "-L", socket, "-f", "/dev/null"] + arguments
        let environment = ["PATH=/usr/bin:/bin", "TERM=xterm-256color", "HOME=\(NSTemporaryDirectory())"]
        var cArguments = argv.map { strdup($0) } + [nil]
        var cEnvironment = environment.map { strdup($0) } + [nil]
        defer {
            for pointer in cArguments { free(pointer) }
            for pointer in cEnvironment { free(pointer) }
        }
        // The calling thread (a Dispatch worker) blocks most signals, and a spawned process
        // inherits that mask: tmux's server, and the program in its pane, would never see
        // SIGCHLD or SIGWINCH. Start them with nothing blocked and default handlers.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid = pid_t()
        let spawned = posix_spawn(&pid, tmux, &actions, &attributes, &cArguments, &cEnvironment)
        guard spawned == 0 else { throw TestFailure("cannot start tmux: error \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        // Exited normally with status 0.
        guard status & 0x7F == 0, (status >> 8) & 0xFF == 0 else {
            throw TestFailure("tmux \(arguments.joined(separator: " ")) failed (\(status)): \(text)")
        }
        return text
    }
}
