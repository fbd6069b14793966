import Crypto

/// A resume token as a session holds it (SPEC §13): the token the user keeps, and its
/// SHA-256, which is all the hub (and so the journal, Redis and snapshots) ever sees.
struct ResumeToken: Equatable, Sendable {
    let token: String
    /// Lower-case hexadecimal SHA-256 of the token's UTF-8.
    let hash: String

    init(token: String) {
        self.token = token
        self.hash = SHA256.hash(data: Array(token.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// 256 bits from the system's cryptographic generator, in URL-safe base64 without
    /// padding: 43 characters that survive a URL, a shell and a file name.
    static func random() -> ResumeToken {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return ResumeToken(token: base64URL(bytes))
    }

    private static func base64URL(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        var text = ""
        var bits = 0
        var value = 0
        for byte in bytes {
            value = value << 8 | Int(byte)
            bits += 8
            while bits >= 6 {
                bits -= 6
                text.append(alphabet[(value >> bits) & 0x3F])
            }
        }
        if bits > 0 { text.append(alphabet[(value << (6 - bits)) & 0x3F]) }
        return text
    }
}
