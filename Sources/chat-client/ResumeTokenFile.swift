import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where the client keeps its resume token for one server: `$XDG_STATE_HOME/chat-client/`
/// (default `~/.local/state/chat-client/`), one file per server and port (and TLS or not),
/// readable by its owner only (the folder 0700, the file 0600). A token is as good as a
/// login code for its days: it never goes anywhere else.
struct ResumeTokenFile: Sendable {
    let path: String

    init?(endpoint: ServerEndpoint, tls: Bool, environment: [String: String] = ProcessInfo.processInfo.environment) {
        let folder: String
        if let state = environment["XDG_STATE_HOME"], state.hasPrefix("/") {
            folder = state + "/chat-client"
        } else if let home = environment["HOME"], !home.isEmpty {
            folder = home + "/.local/state/chat-client"
        } else {
            return nil
        }
        let host = String(endpoint.host.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" })
        path = "\(folder)/\(host)_\(endpoint.port)\(tls ? "-tls" : "").token"
    }

    func read() -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return token.isEmpty ? nil : token
    }

    /// Writes the token to a new file of mode 0600 and renames it over the old one, so the
    /// file is never readable by others nor half written.
    func write(_ token: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(
            atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let temporary = path + ".new"
        unlink(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else { throw CocoaError(.fileWriteNoPermission) }
        let bytes = Array((token + "\n").utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
        guard written == bytes.count, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw CocoaError(.fileWriteUnknown)
        }
    }

    func remove() {
        unlink(path)
    }
}
