import Foundation

/// Writes each OTP mail as one complete RFC 5322 `.eml` file into a folder.
///
/// Tests, benchmarks and operators' scripts read codes from there. Each file is written
/// under a temporary name and renamed into place, so a reader never sees half a mail.
/// The name starts with the recipient's address, so `ls MAIL_DIR/alice@example.com-*`
/// finds a user's mails; the rest makes it unique and sortable by time.
public struct FileMailer: Mailer {
    public let name = "file"
    public let directory: URL
    private let from: String

    public enum Failure: Error, CustomStringConvertible {
        case cannotCreateDirectory(String, underlying: any Error)

        public var description: String {
            switch self {
            case .cannotCreateDirectory(let path, let underlying):
                return "cannot create mail folder \(path): \(underlying)"
            }
        }
    }

    /// Creates the folder when it does not exist.
    public init(directory: String, from: String = "TCP Chat <noreply@localhost>") throws {
        self.directory = URL(fileURLWithPath: directory, isDirectory: true)
        self.from = from
        do {
            try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        } catch {
            throw Failure.cannotCreateDirectory(directory, underlying: error)
        }
    }

    public func send(_ mail: OTPMail) async throws {
        let message = MailMessage(mail: mail, from: from)
        let stamp = UInt64(message.date.timeIntervalSince1970 * 1_000_000)
        let unique = UUID().uuidString.prefix(8).lowercased()
        let base = "\(Self.fileSafe(mail.recipient))-\(stamp)-\(unique)"
        let temporary = directory.appendingPathComponent(".\(base).tmp")
        let final = directory.appendingPathComponent("\(base).eml")
        try Data(message.rendered.utf8).write(to: temporary)
        try FileManager.default.moveItem(at: temporary, to: final)
    }

    /// The address with anything that is not safe in a file name replaced by `_`.
    public static func fileSafe(_ address: String) -> String {
        String(
            address.lowercased().map { character -> Character in
                character.isASCII && (character.isLetter || character.isNumber || "@._+-".contains(character))
                    ? character : "_"
            })
    }
}
