import ChatCore
import ChatMail
import ChatTestSupport
import Foundation
import RedisClient
import Testing

@testable import ChatCluster
@testable import ChatServer

@Suite struct ConfigurationTests {
    private func withEnvFile<T>(_ contents: String, _ body: (String) async throws -> T) async throws -> T {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("chat-\(UUID().uuidString).env").path
        try Data(contents.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try await body(path)
    }

    @Test func defaults() async throws {
        let configuration = try await ServerConfiguration.load(
            flags: [:], environmentFile: "/nonexistent/.env", environment: [:])
        #expect(configuration.port == 8888)
        #expect(configuration.otpExpirationMinutes == 5)
        #expect(configuration.otpMaxRetries == 3)
        #expect(configuration.usernameRules.minimumLength == 3)
        #expect(configuration.usernameRules.maximumLength == 16)
        #expect(configuration.maxConnectionsPerIP == 1)
        #expect(configuration.maxLineBytes == 4096)
        #expect(configuration.mailTransport == .log)
    }

    @Test func priorityIsDefaultsThenFileThenEnvironmentThenFlags() async throws {
        try await withEnvFile("TCP_PORT=1001\nOTP_MAX_RETRIES=7\nUSERNAME_MAX_LENGTH=20\nMAX_LINE_BYTES=2048\n") {
            path in
            let configuration = try await ServerConfiguration.load(
                flags: [.tcpPort: "1003"],
                environmentFile: path,
                environment: ["TCP_PORT": "1002", "OTP_MAX_RETRIES": "8"]
            )
            #expect(configuration.port == 1003)  // flag beats environment and file
            #expect(configuration.otpMaxRetries == 8)  // environment beats file
            #expect(configuration.usernameRules.maximumLength == 20)  // file beats default
            #expect(configuration.maxLineBytes == 2048)
            #expect(configuration.historySize == 100)  // default
        }
    }

    @Test func theSeedsEnvFileWorksWithoutSMTPWhenTransportIsChosen() async throws {
        try await withEnvFile("MAIL_TRANSPORT=file\nMAIL_DIR=/tmp/x\nOTP_EXPIRATION_MINUTES=10\n") { path in
            let configuration = try await ServerConfiguration.load(flags: [:], environmentFile: path, environment: [:])
            #expect(configuration.mailTransport == .file(directory: "/tmp/x"))
            #expect(configuration.otpExpirationMinutes == 10)
        }
    }

    @Test(arguments: [
        (Setting.tcpPort, "eighty"), (.tcpPort, "70000"), (.otpMaxRetries, "0"), (.usernameMinLength, "-1"),
        (.maxLineBytes, "10"), (.logLevel, "loud"), (.mailTransport, "pigeon"), (.maxConnectionsPerIP, "0"),
    ])
    func anInvalidValueNamesTheSetting(setting: Setting, value: String) async throws {
        await #expect {
            try await ServerConfiguration.load(flags: [:], environmentFile: "/none", environment: [setting.name: value])
        } throws: { error in
            (error as? ConfigurationError)?.setting == setting
                && "\(error)".hasPrefix("Invalid setting \(setting.name): ")
        }
    }

    /// Every invalid-setting error names the value given, once, and never a secret's.
    @Test(arguments: [
        ("TRUSTED_PROXIES", "10.0.0.0/33", ["PROXY_PROTOCOL": "on"]),
        ("METRICS_PORT", "abc", [:]),
        ("PROXY_PROTOCOL", "maybe", [:]),
        ("NODE_ID", "has space", ["CLUSTER_REDIS_URL": "redis://127.0.0.1:6379"]),
    ])
    func anInvalidSettingNamesTheValueGiven(name: String, value: String, more: [String: String]) async throws {
        do {
            _ = try await ServerConfiguration.load(
                flags: [:], environmentFile: "/none", environment: more.merging([name: value]) { $1 })
            Issue.record("\(name)=\(value) must stop start-up")
        } catch {
            let text = "\(error)"
            #expect(text.hasPrefix("Invalid setting \(name): "), "\(text)")
            #expect(text.components(separatedBy: value).count == 2, "the value once: \(text)")
        }
    }

    @Test func usernameBoundsMustBeOrdered() async throws {
        await #expect(throws: ConfigurationError.self) {
            try await ServerConfiguration.load(
                flags: [:], environmentFile: "/none",
                environment: ["USERNAME_MIN_LENGTH": "10", "USERNAME_MAX_LENGTH": "5"])
        }
    }

    @Test func theSMTPPasswordIsNeverPrinted() async throws {
        do {
            _ = try await ServerConfiguration.load(
                flags: [:], environmentFile: "/none",
                environment: ["SMTP_HOST": "smtp.example.com", "SMTP_PASSWORD": "hunter2-secret"])
            Issue.record("SMTP without a sender address must stop start-up")
        } catch {
            #expect("\(error)".hasPrefix("Invalid setting SMTP_EMAIL"))
            #expect(!"\(error)".contains("hunter2-secret"))
        }
    }

    @Test func theSeedsSMTPEnvFileSelectsSMTPWithSTARTTLS() async throws {
        let seed = """
            TCP_PORT=8888
            SMTP_HOST=smtp.gmail.com
            SMTP_PORT=587
            SMTP_EMAIL=your-email@gmail.com
            SMTP_PASSWORD=your-app-specific-password
            OTP_EXPIRATION_MINUTES=5
            """
        try await withEnvFile(seed) { path in
            let configuration = try await ServerConfiguration.load(flags: [:], environmentFile: path, environment: [:])
            guard case .smtp(let smtp) = configuration.mailTransport else {
                Issue.record("expected the SMTP transport, got \(configuration.mailTransport)")
                return
            }
            #expect(smtp.host == "smtp.gmail.com" && smtp.port == 587 && smtp.security == .starttls)
            #expect(smtp.username == "your-email@gmail.com" && smtp.envelopeSender == "your-email@gmail.com")
            #expect(smtp.fromHeader == "TCP Chat <your-email@gmail.com>")
            #expect(!"\(smtp)".contains("your-app-specific-password"))
        }
    }

    @Test func smtpSecurityDefaultsAndLimits() async throws {
        let base = ["SMTP_HOST": "mail.example.com", "SMTP_EMAIL": "chat@example.com"]
        let implicit = try await ServerConfiguration.load(
            flags: [:], environmentFile: "/none", environment: base.merging(["SMTP_PORT": "465"]) { $1 })
        #expect(Self.smtp(implicit)?.security == .tls)
        let starttls = try await ServerConfiguration.load(flags: [:], environmentFile: "/none", environment: base)
        #expect(Self.smtp(starttls)?.security == .starttls && Self.smtp(starttls)?.port == 587)
        await #expect {
            try await ServerConfiguration.load(
                flags: [:], environmentFile: "/none", environment: base.merging(["SMTP_SECURITY": "none"]) { $1 })
        } throws: { ($0 as? ConfigurationError)?.setting == .smtpSecurity }
        let local = try await ServerConfiguration.load(
            flags: [:], environmentFile: "/none",
            environment: ["SMTP_HOST": "127.0.0.1", "SMTP_EMAIL": "chat@example.com", "SMTP_SECURITY": "none"])
        #expect(Self.smtp(local)?.security == SMTPSettings.Security.none)
        await #expect {
            try await ServerConfiguration.load(
                flags: [:], environmentFile: "/none", environment: base.merging(["SMTP_CA_FILE": "/no/such.pem"]) { $1 }
            )
        } throws: { ($0 as? ConfigurationError)?.setting == .smtpCAFile }
    }

    @Test func aLoginThatIsNotAnAddressTakesTheSenderFromSMTPFrom() async throws {
        let sendgrid = try await ServerConfiguration.load(
            flags: [:], environmentFile: "/none",
            environment: [
                "SMTP_HOST": "smtp.sendgrid.net", "SMTP_EMAIL": "apikey", "SMTP_PASSWORD": "SG.x",
                "SMTP_FROM": "Chat <noreply@example.com>",
            ])
        #expect(Self.smtp(sendgrid)?.username == "apikey")
        #expect(Self.smtp(sendgrid)?.envelopeSender == "noreply@example.com")
        #expect(Self.smtp(sendgrid)?.fromHeader == "Chat <noreply@example.com>")
        await #expect {
            try await ServerConfiguration.load(
                flags: [:], environmentFile: "/none",
                environment: ["SMTP_HOST": "smtp.sendgrid.net", "SMTP_EMAIL": "apikey"])
        } throws: { ($0 as? ConfigurationError)?.setting == .smtpEmail }
    }

    private static func smtp(_ configuration: ServerConfiguration) -> SMTPSettings? {
        if case .smtp(let settings) = configuration.mailTransport { return settings }
        return nil
    }

    @Test func aNamedEnvFileMustExist() async throws {
        await #expect(throws: ServerConfiguration.EnvironmentFileError.self) {
            try await ServerConfiguration.load(
                flags: [:], environmentFile: "/nonexistent/chat.env", requireEnvironmentFile: true, environment: [:])
        }
    }

    // MARK: The settings catalogue (one source of truth)

    @Test func flagsAreReadAgainstTheCatalogue() throws {
        let values = try Setting.values(fromFlags: [
            "--port", "9000", "--history-size=50", "--admin-emails", "a@example.com,b@example.com",
            "--max-sendq-bytes", "65536", "--port=9001",
        ])
        #expect(values[.tcpPort] == "9001")  // the later flag wins
        #expect(values[.historySize] == "50")
        #expect(values[.adminEmails] == "a@example.com,b@example.com")
        #expect(values[.maxSendQueueBytes] == "65536")
        #expect(values.count == 4)
        #expect(throws: Setting.CommandLineError.self) { try Setting.values(fromFlags: ["--no-such-setting", "1"]) }
        #expect(throws: Setting.CommandLineError.self) { try Setting.values(fromFlags: ["--port"]) }
        #expect(throws: Setting.CommandLineError.self) {
            try Setting.values(fromFlags: ["--port", "--log-level", "x"])
        }
        #expect(throws: Setting.CommandLineError.self) { try Setting.values(fromFlags: ["9000"]) }
        // A secret never goes on a command line, where any user of the machine can read it.
        #expect(throws: Setting.CommandLineError.self) { try Setting.values(fromFlags: ["--smtp-password", "x"]) }
    }

    @Test func everyDefaultIsValidAndWithinItsRange() async throws {
        let loaded = try await ServerConfiguration.load(flags: [:], environmentFile: "/none", environment: [:])
        let plain = ServerConfiguration()
        #expect(loaded.port == plain.port && loaded.limits == plain.limits && loaded.historySize == plain.historySize)
        for setting in Setting.allCases {
            if let range = setting.range {
                let isOff = setting.definition.allowsOff && setting.defaultValue == "off"
                #expect(isOff || Int(setting.defaultValue).map(range.contains) == true, "\(setting.name)")
            }
            #expect(setting.isSecret == (setting.flag == nil), "\(setting.name)")
            #expect(Setting.named(flag: setting.flag ?? "") == (setting.flag == nil ? nil : setting))
        }
        let flags = Setting.allCases.compactMap(\.flag)
        #expect(Set(flags).count == flags.count)
    }

    @Test(arguments: Setting.allCases.filter { $0.range != nil })
    func aWholeNumberOutsideItsRangeNamesTheSetting(_ setting: Setting) async throws {
        let range = try #require(setting.range)
        for value in [range.lowerBound - 1, range.upperBound + 1] {
            let error = await #expect(throws: ConfigurationError.self) {
                try await ServerConfiguration.load(
                    flags: [setting: "\(value)"], environmentFile: "/none", environment: [:])
            }
            #expect(error?.setting == setting)
        }
    }

    /// docs/CONFIGURATION.md's settings tables list exactly the catalogue, each with its flag
    /// and default, in one row each.
    @Test func theConfigurationPageListsEverySettingOnceWithItsFlag() throws {
        let readme = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/CONFIGURATION.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        var rows: [String: [String]] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 3, cells[0].hasPrefix("`"), cells[0].uppercased() == cells[0] else { continue }
            let name = cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
            #expect(rows[name] == nil, "\(name) has more than one row")
            rows[name] = cells
        }
        for setting in Setting.allCases {
            let row = try #require(rows[setting.name], "docs/CONFIGURATION.md has no row for \(setting.name)")
            #expect(row[1] == (setting.flag.map { "`\($0)`" } ?? "(none)"), "\(setting.name)")
            if !setting.defaultValue.isEmpty {
                #expect(row[2].contains("`\(setting.defaultValue)`"), "\(setting.name)")
            }
        }
        #expect(Set(rows.keys).isSuperset(of: Setting.allCases.map(\.name)))
    }

    @Test func clusterSettingsAreReadAndChecked() async throws {
        #expect(try await load([:]).cluster == nil)

        let cluster = try #require(
            try await load(["CLUSTER_REDIS_URL": "redis://10.0.0.5:6380/1", "REDIS_PASSWORD": "hunter2"]).cluster)
        #expect(cluster.redis.host == "10.0.0.5" && cluster.redis.port == 6380 && cluster.redis.database == 1)
        #expect(cluster.redis.password == "hunter2")
        #expect(!"\(cluster.redis)".contains("hunter2"))
        #expect(cluster.heartbeat == .seconds(2) && cluster.nodeTimeout == .seconds(6))
        // The default name: the host's, with a random suffix, so two nodes on one host differ.
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "node"
        #expect(cluster.nodeID.hasPrefix("\(host)-"))
        let another = try #require(try await load(["CLUSTER_REDIS_URL": "redis://h:1"]).cluster)
        #expect(another.nodeID != cluster.nodeID)
        // A password in the URL wins over REDIS_PASSWORD.
        let inURL = try #require(
            try await load(["CLUSTER_REDIS_URL": "redis://:fromurl@h", "REDIS_PASSWORD": "other"]).cluster)
        #expect(inURL.redis.password == "fromurl")

        #expect(await error(["CLUSTER_REDIS_URL": "http://h"])?.setting == .clusterRedisURL)
        #expect(await error(["CLUSTER_REDIS_URL": "redis://h:99999"])?.setting == .clusterRedisURL)
        #expect(
            await error(["CLUSTER_REDIS_URL": "redis://h", "CLUSTER_HEARTBEAT_SECONDS": "6"])?.setting
                == .clusterNodeTimeoutSeconds)
        #expect(await error(["CLUSTER_REDIS_URL": "redis://h", "NODE_ID": "two words"])?.setting == .nodeID)
        #expect(
            await error(["CLUSTER_REDIS_URL": "rediss://h", "REDIS_CA_FILE": "/no/ca.pem"])?.setting == .redisCAFile)
    }

    @Test func sentinelSettingsAreReadAndChecked() async throws {
        let cluster = try #require(
            try await load([
                "CLUSTER_REDIS_SENTINELS": "10.0.0.1:26379,10.0.0.2:26379", "CLUSTER_REDIS_MASTER_NAME": "chat",
                "REDIS_PASSWORD": "data-secret", "REDIS_SENTINEL_PASSWORD": "sentinel-secret",
                "CLUSTER_REDIS_TLS": "on",
            ]).cluster)
        let sentinels = try #require(cluster.sentinels)
        #expect(sentinels.addresses.map(\.description) == ["10.0.0.1:26379", "10.0.0.2:26379"])
        #expect(sentinels.masterName == "chat" && sentinels.password == "sentinel-secret")
        #expect(sentinels.replicasToWait == 1 && sentinels.replicationTimeout == .seconds(1))
        #expect(cluster.redis.password == "data-secret" && cluster.redis.usesTLS)
        #expect(cluster.redisDescription == "the primary 'chat' of sentinels 10.0.0.1:26379,10.0.0.2:26379 (TLS)")
        #expect(!cluster.redisDescription.contains("secret"))
        let strict = try #require(
            try await load([
                "CLUSTER_REDIS_SENTINELS": "s:1", "CLUSTER_REDIS_MASTER_NAME": "m", "CLUSTER_REDIS_WAIT_REPLICAS": "2",
                "CLUSTER_REDIS_WAIT_TIMEOUT_MS": "250",
            ]).cluster?.sentinels)
        #expect(strict.replicasToWait == 2 && strict.replicationTimeout == .milliseconds(250))

        #expect(await error(["CLUSTER_REDIS_SENTINELS": "s:1"])?.setting == .clusterRedisMasterName)
        #expect(
            await error(["CLUSTER_REDIS_SENTINELS": "s", "CLUSTER_REDIS_MASTER_NAME": "m"])?.setting
                == .clusterRedisSentinels)
        #expect(
            await error([
                "CLUSTER_REDIS_SENTINELS": "s:1", "CLUSTER_REDIS_MASTER_NAME": "m", "CLUSTER_REDIS_URL": "redis://h",
            ])?.setting == .clusterRedisSentinels)
        #expect(
            await error([
                "CLUSTER_REDIS_SENTINELS": "s:1", "CLUSTER_REDIS_MASTER_NAME": "m", "CLUSTER_REDIS_TLS": "yes",
            ])?
            .setting == .clusterRedisTLS)
        #expect(
            await error([
                "CLUSTER_REDIS_SENTINELS": "s:1", "CLUSTER_REDIS_MASTER_NAME": "m",
                "CLUSTER_REDIS_WAIT_TIMEOUT_MS": "9000",
            ])?.setting == .clusterRedisWaitTimeoutMilliseconds)
    }

    @Test func tlsAndListenerSettingsAreChecked() async throws {
        func error(_ environment: [String: String]) async -> ConfigurationError? {
            do {
                _ = try await ServerConfiguration.load(flags: [:], environmentFile: "/none", environment: environment)
                return nil
            } catch {
                return error as? ConfigurationError
            }
        }
        #expect(await error(["TLS_PORT": "8889"])?.setting == .tlsCertFile)
        #expect(
            await error(["TLS_PORT": "8889", "TLS_CERT_FILE": "/no/cert.pem", "TLS_KEY_FILE": "/no/key.pem"])?.setting
                == .tlsCertFile)
        #expect(await error(["TCP_PORT": "off"])?.setting == .tcpPort)
        #expect(await error(["TLS_PORT": "seventy"])?.setting == .tlsPort)
        #expect(await error(["PROXY_PROTOCOL": "maybe"])?.setting == .proxyProtocol)
        #expect(await error(["PROXY_PROTOCOL": "on", "TRUSTED_PROXIES": "10.0.0.0/33"])?.setting == .trustedProxies)
        let off = try await ServerConfiguration.load(
            flags: [.tcpPort: "OFF"], environmentFile: "/none",
            environment: ["TLS_PORT": "0", "TLS_CERT_FILE": "/etc/hostname", "TLS_KEY_FILE": "/etc/hostname"])
        #expect(off.port == nil && off.tls?.port == 0)
        // The web listeners: HTTPS needs the certificate; a web port alone is a listener.
        #expect(await error(["WEB_TLS_PORT": "8443"])?.setting == .tlsCertFile)
        #expect(await error(["WEB_PORT": "eighty"])?.setting == .webPort)
        #expect(
            await error(["WEB_PORT": "8080", "WEB_ALLOWED_ORIGINS": "chat.example.com"])?.setting == .webAllowedOrigins)
        #expect(await error(["WEB_PORT": "8080", "WEB_PING_SECONDS": "0"])?.setting == .webPingSeconds)
        let webOnly = try await ServerConfiguration.load(
            flags: [.tcpPort: "off"], environmentFile: "/none",
            environment: [
                "WEB_PORT": "8080", "WEB_ALLOWED_ORIGINS": "https://Chat.Example.com, http://localhost:3000",
                "BIND_ADDRESS": "127.0.0.1",
            ])
        let web = try #require(webOnly.web)
        #expect(webOnly.port == nil && webOnly.tls == nil)
        #expect(web.port == 8080 && web.tlsPort == nil && web.host == "127.0.0.1")
        #expect(web.allowedOrigins == ["https://chat.example.com", "http://localhost:3000"])
        #expect(web.pingInterval == .seconds(30))
        let webTLS = try await ServerConfiguration.load(
            flags: [:], environmentFile: "/none",
            environment: [
                "WEB_TLS_PORT": "8443", "WEB_BIND_ADDRESS": "::", "TLS_CERT_FILE": "/etc/hostname",
                "TLS_KEY_FILE": "/etc/hostname",
            ])
        #expect(webTLS.tls?.port == nil && webTLS.tls?.certificateFile == "/etc/hostname")
        #expect(webTLS.web?.tlsPort == 8443 && webTLS.web?.port == nil && webTLS.web?.host == "::")
        #expect(try await ServerConfiguration.load(flags: [:], environmentFile: "/none", environment: [:]).web == nil)
        let proxied = try await ServerConfiguration.load(
            flags: [:], environmentFile: "/none", environment: ["PROXY_PROTOCOL": "on"])
        #expect(proxied.proxyProtocol?.trustedProxies.map(\.description) == ["127.0.0.1/32", "::1/128"])
        #expect(proxied.proxyProtocol?.headerTimeout == .seconds(5))
    }
}

/// The configuration of an environment alone (no flags, no `.env` file).
private func load(_ environment: [String: String]) async throws -> ServerConfiguration {
    try await ServerConfiguration.load(flags: [:], environmentFile: "/none", environment: environment)
}

/// The error an environment alone is refused with, if it is.
private func error(_ environment: [String: String]) async -> ConfigurationError? {
    do {
        _ = try await load(environment)
        return nil
    } catch {
        return error as? ConfigurationError
    }
}
