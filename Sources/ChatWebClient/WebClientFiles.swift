import ChatCore

/// One file of the web client, as the web listener serves it.
public struct WebClientFile: Sendable {
    /// The `Content-Type` header's value.
    public let contentType: String
    public let bytes: [UInt8]
    /// A strong validator of the bytes, quoted as the `ETag` header wants it: a browser
    /// revalidates on each visit and gets `304` until an upgrade changes the file.
    public let entityTag: String

    init(contentType: String, bytes: [UInt8]) {
        self.contentType = contentType
        self.bytes = bytes
        self.entityTag = "\"\(String(CRC32C.checksum(bytes), radix: 16))-\(bytes.count)\""
    }
}

/// The web client: a page, its style and its script, compiled into the binary (SwiftPM's
/// `embedInCode` resources), so the server serves it with no files to install and no
/// network beyond itself.
public enum WebClientFiles {
    /// The file served at an HTTP path (`/` is the page), or `nil`.
    public static func file(at path: String) -> WebClientFile? {
        files[path]
    }

    private static let files: [String: WebClientFile] = [
        "/": WebClientFile(contentType: "text/html; charset=utf-8", bytes: PackageResources.index_html),
        "/chat.css": WebClientFile(contentType: "text/css; charset=utf-8", bytes: PackageResources.chat_css),
        "/chat.js": WebClientFile(contentType: "text/javascript; charset=utf-8", bytes: PackageResources.chat_js),
        "/lines.js": WebClientFile(contentType: "text/javascript; charset=utf-8", bytes: PackageResources.lines_js),
        "/favicon.svg": WebClientFile(contentType: "image/svg+xml", bytes: PackageResources.favicon_svg),
    ]
}
