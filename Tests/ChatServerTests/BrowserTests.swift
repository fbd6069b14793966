import ChatTestSupport
import Foundation
import NIOCore
import NIOPosix
import Testing

/// The web client in a real browser (headless Chromium over WebDriver) against a real
/// `chat-server` process: logging in with a mailed code, chatting with a terminal user both
/// ways, a hostile line shown as text, and a reconnect after the server restarts.
@Suite(.serialized) struct BrowserTests {
    private static let unavailable =
        "chromium and chromium-driver are not installed (Debian: apt-get install chromium chromium-driver; "
        + "scripts/test.sh installs them)"

    /// The lines in the page's log, as text.
    private static let lines = "return [...document.querySelectorAll('#messages .line')].map(e => e.textContent)"

    @Test(.enabled(if: WebDriver.isAvailable, Comment(rawValue: unavailable)))
    func aBrowserLogsInChatsAndComesBackAfterARestart() async throws {
        let mail = try MailFolder.makeTemporary()
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("browser-\(UUID().uuidString)")
        defer {
            mail.remove()
            try? FileManager.default.removeItem(at: data)
        }
        let webPort = try freeLoopbackPort()
        let environment = [
            "TCP_PORT": "0", "WEB_PORT": "\(webPort)", "BIND_ADDRESS": "127.0.0.1", "MAIL_TRANSPORT": "file",
            "MAIL_DIR": mail.path, "SHUTDOWN_TIMEOUT_SECONDS": "2", "DATA_DIR": data.path,
            // bob sends a long session's worth of lines at once below.
            "MESSAGE_BURST": "10000", "MESSAGES_PER_SECOND": "10000", "MAX_QUEUED_LINES": "10000",
        ]
        var server = try ServerProcess.start(environment: environment)
        defer { server.kill() }
        let tcpPort = Int(try await server.waitForLog(#"listener=tcp .*port=(\d+) .*Listening"#))!
        _ = try await server.waitForLog(#"listener=(web) .*Listening"#)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let browser = try await WebDriver.start()
        do {
            let output = try testOutputFolder()
            try await browser.open("http://127.0.0.1:\(webPort)/")

            // The login reads like a form: e-mail, code, username, each asked for by its label.
            try await browser.waitUntil(
                "return document.querySelector('#login-label').textContent === 'E-mail address'"
                    + " && !document.querySelector('#login-form').hidden", "the e-mail field")
            try await browser.type("not an address\u{E007}", into: "#login-field")
            try await browser.waitUntil(
                "return document.querySelector('#login-error').textContent === 'Invalid email address.'",
                "the server's error next to the field")
            try await browser.screenshot(to: output.appendingPathComponent("web-login.png").path)
            try await browser.run("document.querySelector('#login-field').value = ''")
            try await browser.type("alice@example.com\u{E007}", into: "#login-field")
            try await browser.waitUntil(
                "return document.querySelector('#login-label').textContent === 'Code from the e-mail'", "the code field"
            )
            let code = try await mail.code(for: "alice@example.com", mailIndex: 0)
            try await browser.type("\(code)\u{E007}", into: "#login-field")
            try await browser.waitUntil(
                "return document.querySelector('#login-label').textContent === 'Username'", "the username field")
            try await browser.type("alice\u{E007}", into: "#login-field")
            try await browser.waitUntil(
                "return !document.querySelector('#chat').hidden && document.querySelector('#me').textContent === 'as alice'",
                "the chat view")

            // A terminal user in the same room: lines go both ways.
            let bob = try await EndToEndTests.login("bob", port: tcpPort, from: "127.0.0.2", mail: mail, group: group)
            try await browser.waitUntil(
                "return [...document.querySelectorAll('#members .person')].some(e => e.textContent.startsWith('bob'))",
                "bob among the people in the room")
            try await bob.send("hello alice, from a terminal")
            try await browser.waitUntil(
                "return [...document.querySelectorAll('#messages .line.chat.mention')]"
                    + ".some(e => e.textContent === 'bobhello alice, from a terminal')",
                "bob's line, marked as a mention")
            try await browser.type("hello bob, from a browser\u{E007}", into: "#input")
            try await bob.readUntil("[alice]: hello bob, from a browser")
            try await browser.type("/me waves\u{E007}", into: "#input")
            try await bob.readUntil("* alice waves")
            try await browser.waitUntil(
                "return [...document.querySelectorAll('#messages .line.action em')].some(e => e.textContent === '* alice waves')",
                "the action in italics")
            try await browser.type("/msg bob psst\u{E007}", into: "#input")
            try await bob.readUntil("[alice]: [PM] psst")
            // The keyboard alone: Tab completes a command, then a name; Up recalls the line.
            try await browser.type("/ms\u{E004}", into: "#input")
            try await browser.waitUntil("return document.querySelector('#input').value === '/msg '", "/ms completed")
            try await browser.type("bo\u{E004}", into: "#input")
            try await browser.waitUntil("return document.querySelector('#input').value === '/msg bob '", "bo completed")
            try await browser.type("by keys\u{E007}", into: "#input")
            try await bob.readUntil("[alice]: [PM] by keys")
            try await browser.type("\u{E013}", into: "#input")
            try await browser.waitUntil(
                "return document.querySelector('#input').value === '/msg bob by keys'", "Up recalled the last line")
            try await browser.run("document.querySelector('#input').value = ''")
            try await bob.send("/msg alice back at you")
            try await browser.waitUntil(
                "return [...document.querySelectorAll('#messages .line.privateMessage')]"
                    + ".some(e => e.textContent === 'bob → youback at you')",
                "bob's private message, marked")

            // What a user writes is text, never markup: no element made, no script run.
            let hostile = "<img src=x onerror=alert(1)>"
            try await bob.send(hostile)
            try await browser.waitUntil(
                "return [...document.querySelectorAll('#messages .line.chat .text')].some(e => e.textContent === arguments[0])"
                    .replacingOccurrences(of: "arguments[0]", with: "'\(hostile)'"),
                "the hostile line, as text")
            #expect(try await browser.run("return document.querySelectorAll('#messages img').length") as? Int == 0)
            #expect(try await browser.alertText() == nil)
            try await browser.screenshot(to: output.appendingPathComponent("web-chat.png").path)
            let shown = try await browser.run(Self.lines) as? [String] ?? []
            #expect(shown.contains("bob\(hostile)"), "\(shown)")

            // A long session: the page keeps only the newest 1000 lines.
            try await bob.sendRaw(Array((1...3000).map { "line \($0)\n" }.joined().utf8))
            try await browser.waitUntil(
                "const lines = document.querySelectorAll('#messages .line');"
                    + " return lines.length === 1000 && lines[999].textContent === 'bobline 3000'",
                "the newest 1000 lines, and no more, in the page")

            // The page kept a resume token ("stay signed in" is on by default), never shown.
            let stored = try await browser.run("return localStorage.getItem('chat.resumeToken')") as? String
            #expect(stored?.count == 43)
            #expect(!(try await browser.run(Self.lines) as? [String] ?? []).contains { $0.contains("Resume token") })
            try await browser.type("/join #den\u{E007}", into: "#input")
            try await browser.waitUntil(
                "return document.querySelector('#room-name').textContent === '#den'", "the room changed")

            // The server restarts: the page says it lost the connection, then is back in its
            // room under its name, with nothing typed.
            await bob.close()
            server.terminate()
            #expect(try await server.waitForExit(timeout: .seconds(20)) == 0)
            try await browser.waitUntil(
                "return /Reconnecting in/.test(document.querySelector('#connection').textContent)",
                "the page saying it reconnects")
            server = try ServerProcess.start(environment: environment)
            _ = try await server.waitForLog(#"listener=(web) .*Listening"#)
            try await browser.waitUntil(
                "return !document.querySelector('#chat').hidden && document.querySelector('#connection').hidden"
                    + " && document.querySelector('#room-name').textContent === '#den'"
                    + " && [...document.querySelectorAll('#messages .line.system')]"
                    + ".some(e => e.textContent === 'Welcome back, alice!')",
                timeout: .seconds(40), "back in #den as alice after the restart, with no key typed")
            #expect(mail.mails(for: "alice@example.com").count == 1)

            // Signing out forgets the token: the next visit shows the login.
            try await browser.type("/logout\u{E007}", into: "#input")
            try await browser.waitUntil(
                "return localStorage.getItem('chat.resumeToken') === null && !document.querySelector('#login').hidden",
                "signed out, the token forgotten")
        } catch {
            await browser.quit()
            try? await group.shutdownGracefully()
            throw error
        }
        await browser.quit()
        try await group.shutdownGracefully()
        server.terminate()
        _ = try await server.waitForExit(timeout: .seconds(20))
    }
}
