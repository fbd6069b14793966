import Foundation

/// Reads OTP codes from the `file` mail transport's folder, as a user reads their inbox.
public struct MailFolder: Sendable {
    public let path: String

    public static func makeTemporary() throws -> MailFolder {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("chat-test-mail-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return MailFolder(path: path)
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// The mails for `email`, oldest first.
    public func mails(for email: String) -> [String] {
        let prefix = email.lowercased() + "-"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { $0.hasPrefix(prefix) && $0.hasSuffix(".eml") }.sorted()
    }

    /// Waits (bounded) for mail number `index` (0-based) for `email` and returns its code.
    public func code(for email: String, mailIndex index: Int, timeout: Duration = .seconds(10)) async throws -> String {
        let code = try await poll(every: .milliseconds(5), timeout: timeout) { () throws -> String? in
            let mails = mails(for: email)
            guard mails.count > index else { return nil }
            let text = try String(contentsOfFile: path + "/" + mails[index], encoding: .utf8)
            guard let range = text.range(of: #"code is: \d{6}"#, options: .regularExpression) else {
                throw MailError.noCode(mails[index])
            }
            return String(text[range].suffix(6))
        }
        guard let code else { throw MailError.noMail(email) }
        return code
    }

    public enum MailError: Error {
        case noMail(String)
        case noCode(String)
    }
}
