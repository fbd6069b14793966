import ChatCore
import Testing

struct WebOriginTests {
    @Test func equalOriginsAreSpelledAlike() {
        #expect(WebOrigin("https://Chat.Example.com")?.text == "https://chat.example.com")
        #expect(WebOrigin("https://chat.example.com:443/")?.text == "https://chat.example.com")
        #expect(WebOrigin("http://chat.example.com:80")?.text == "http://chat.example.com")
        #expect(WebOrigin("http://chat.example.com:8080")?.text == "http://chat.example.com:8080")
        #expect(WebOrigin("http://[::1]:8080")?.text == "http://[::1]:8080")
        #expect(WebOrigin(scheme: "https", host: "localhost:443")?.text == "https://localhost")
    }

    @Test func whatIsNotAnOriginIsRefused() {
        for text in [
            "", "null", "chat.example.com", "ftp://chat.example.com", "https://", "https://:80",
            "https://chat.example.com/path", "https://chat.example.com:99999", "https://chat.example.com:",
            "https://chat example.com", "https://user@chat.example.com", "http://[::1", "https://a.com:8a",
        ] {
            #expect(WebOrigin(text) == nil, "\(text)")
        }
    }
}

struct ForwardedForTests {
    private let trusted = [IPNetwork("10.0.0.0/8")!, IPNetwork("127.0.0.1")!]

    private func client(_ peer: String, _ headers: [String]) -> String {
        ForwardedFor.client(peer: IPAddress(peer)!, headerValues: headers, trusted: trusted).description
    }

    @Test func theClientIsTheRightMostHopNoTrustedProxyAdded() {
        #expect(client("127.0.0.1", ["198.51.100.7"]) == "198.51.100.7")
        #expect(client("127.0.0.1", ["203.0.113.1, 198.51.100.7, 10.1.2.3"]) == "198.51.100.7")
        #expect(client("127.0.0.1", ["203.0.113.1", "198.51.100.7", "10.1.2.3"]) == "198.51.100.7")
        #expect(client("127.0.0.1", ["[2001:db8::7]:4711"]) == "2001:db8::7")
        #expect(client("127.0.0.1", ["198.51.100.7:4711"]) == "198.51.100.7")
    }

    @Test func anUntrustedPeerIsTheClientWhateverItClaims() {
        #expect(client("192.0.2.5", ["198.51.100.7"]) == "192.0.2.5")
        #expect(client("192.0.2.5", []) == "192.0.2.5")
    }

    @Test func theChainIsBelievedOnlyAsFarAsTrustedProxiesWroteIt() {
        // No header: the proxy itself. Only proxies: the left-most of them. Garbage from the
        // client: the hop the proxy saw.
        #expect(client("127.0.0.1", []) == "127.0.0.1")
        #expect(client("127.0.0.1", ["10.0.0.2, 10.0.0.1"]) == "10.0.0.2")
        #expect(client("127.0.0.1", ["unknown, 198.51.100.7"]) == "198.51.100.7")
        #expect(client("127.0.0.1", ["198.51.100.7, <script>"]) == "127.0.0.1")
    }
}
