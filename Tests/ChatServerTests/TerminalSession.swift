import ChatTestSupport
import Foundation

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
        var current = try screen()
        let shown = try await poll(every: .milliseconds(20), timeout: timeout) {
            current = try screen()
            return current.contains(text)
        }
        guard shown else {
            throw TestFailure("the terminal never showed \(text.debugDescription); it shows:\n\(current)")
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
        // SpawnedProcess, not Foundation's Process: tmux's server must see SIGCHLD. Output
        // goes to a file, not a pipe: `new-session` starts tmux's server, which keeps the
        // client's output open for as long as it runs.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tmux-\(UUID().uuidString).txt")
        defer { try? FileManager.default.removeItem(at: file) }
        let process = try SpawnedProcess(
            tmux, ["-L", socket, "-f", "/dev/null"] + arguments,
            environment: ["PATH": "/usr/bin:/bin", "TERM": "xterm-256color", "HOME": NSTemporaryDirectory()],
            output: file.path)
        let status = process.wait()
        let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw TestFailure("tmux \(arguments.joined(separator: " ")) failed (\(status)): \(text)")
        }
        return text
    }
}
