/// Every setting the server reads: its name, command-line flag, default, range, meaning
/// and whether it is secret, each in one entry of ``definition``.
///
/// The one source behind `.env` files, environment variables, command-line flags,
/// validation, `chat-server --help` and the table in docs/CONFIGURATION.md: adding a setting is a case here,
/// its entry in ``definition``, and its use in ``ServerConfiguration/init(reader:)``.
public enum Setting: String, CaseIterable, Sendable {
    case bindAddress = "BIND_ADDRESS"
    case tcpPort = "TCP_PORT"
    case tlsPort = "TLS_PORT"
    case tlsCertFile = "TLS_CERT_FILE"
    case tlsKeyFile = "TLS_KEY_FILE"
    case tlsHandshakeTimeoutSeconds = "TLS_HANDSHAKE_TIMEOUT_SECONDS"
    case webPort = "WEB_PORT"
    case webTLSPort = "WEB_TLS_PORT"
    case webBindAddress = "WEB_BIND_ADDRESS"
    case webAllowedOrigins = "WEB_ALLOWED_ORIGINS"
    case webPingSeconds = "WEB_PING_SECONDS"
    case mailTransport = "MAIL_TRANSPORT"
    case mailDir = "MAIL_DIR"
    case mailFrom = "MAIL_FROM"
    case smtpHost = "SMTP_HOST"
    case smtpPort = "SMTP_PORT"
    case smtpEmail = "SMTP_EMAIL"
    case smtpPassword = "SMTP_PASSWORD"
    case smtpFrom = "SMTP_FROM"
    case smtpSecurity = "SMTP_SECURITY"
    case smtpCAFile = "SMTP_CA_FILE"
    case smtpTimeoutSeconds = "SMTP_TIMEOUT_SECONDS"
    case smtpMaxConcurrency = "SMTP_MAX_CONCURRENCY"
    case smtpMaxQueued = "SMTP_MAX_QUEUED"
    case otpExpirationMinutes = "OTP_EXPIRATION_MINUTES"
    case otpMaxRetries = "OTP_MAX_RETRIES"
    case usernameMinLength = "USERNAME_MIN_LENGTH"
    case usernameMaxLength = "USERNAME_MAX_LENGTH"
    case maxConnectionsPerIP = "MAX_CONNECTIONS_PER_IP"
    case maxLineBytes = "MAX_LINE_BYTES"
    case maxSendQueueBytes = "MAX_SENDQ_BYTES"
    case historySize = "HISTORY_SIZE"
    case presenceNoticeMaxMembers = "PRESENCE_NOTICE_MAX_MEMBERS"
    case roomKeepEmptyDays = "ROOM_KEEP_EMPTY_DAYS"
    case roomsMax = "ROOMS_MAX"
    case roomsPerOwner = "ROOMS_PER_OWNER"
    case resumeTokenDays = "RESUME_TOKEN_DAYS"
    case eventLoopThreads = "EVENT_LOOP_THREADS"
    case shutdownTimeoutSeconds = "SHUTDOWN_TIMEOUT_SECONDS"
    case logLevel = "LOG_LEVEL"
    case maxConnections = "MAX_CONNECTIONS"
    case connectionsPerIPPerMinute = "CONNECTIONS_PER_IP_PER_MINUTE"
    case nickChangesPerMinute = "NICK_CHANGES_PER_MINUTE"
    case loginTimeoutSeconds = "LOGIN_TIMEOUT_SECONDS"
    case maxEmailAttempts = "MAX_EMAIL_ATTEMPTS"
    case otpRequestIntervalSeconds = "OTP_REQUEST_INTERVAL_SECONDS"
    case otpRequestsPerHour = "OTP_REQUESTS_PER_HOUR"
    case otpRequestsPerIPPerHour = "OTP_REQUESTS_PER_IP_PER_HOUR"
    case otpRequestsPerMinute = "OTP_REQUESTS_PER_MINUTE"
    case messageBurst = "MESSAGE_BURST"
    case messagesPerSecond = "MESSAGES_PER_SECOND"
    case maxQueuedLines = "MAX_QUEUED_LINES"
    case adminEmails = "ADMIN_EMAILS"
    case proxyProtocol = "PROXY_PROTOCOL"
    case trustedProxies = "TRUSTED_PROXIES"
    case proxyHeaderTimeoutSeconds = "PROXY_HEADER_TIMEOUT_SECONDS"
    case metricsPort = "METRICS_PORT"
    case metricsBindAddress = "METRICS_BIND_ADDRESS"
    case clusterRedisURL = "CLUSTER_REDIS_URL"
    case clusterRedisSentinels = "CLUSTER_REDIS_SENTINELS"
    case clusterRedisMasterName = "CLUSTER_REDIS_MASTER_NAME"
    case redisSentinelPassword = "REDIS_SENTINEL_PASSWORD"
    case clusterRedisTLS = "CLUSTER_REDIS_TLS"
    case clusterRedisWaitReplicas = "CLUSTER_REDIS_WAIT_REPLICAS"
    case clusterRedisWaitTimeoutMilliseconds = "CLUSTER_REDIS_WAIT_TIMEOUT_MS"
    case redisPassword = "REDIS_PASSWORD"
    case redisCAFile = "REDIS_CA_FILE"
    case nodeID = "NODE_ID"
    case clusterHeartbeatSeconds = "CLUSTER_HEARTBEAT_SECONDS"
    case clusterNodeTimeoutSeconds = "CLUSTER_NODE_TIMEOUT_SECONDS"
    case clusterSnapshotSeconds = "CLUSTER_SNAPSHOT_SECONDS"
    case clusterSnapshotEntries = "CLUSTER_SNAPSHOT_ENTRIES"
    case dataDirectory = "DATA_DIR"
    case dataFsync = "DATA_FSYNC"
    case dataSnapshotSeconds = "DATA_SNAPSHOT_SECONDS"
    case dataSnapshotEntries = "DATA_SNAPSHOT_ENTRIES"
    case dataRecovery = "DATA_RECOVERY"

    /// What one setting is.
    public struct Definition: Sendable {
        /// The default, as written in a `.env` file; empty when there is none.
        public let defaultValue: String
        /// The values a whole-number setting accepts.
        public let range: ClosedRange<Int>?
        /// The command-line flag without its dashes; `nil`: no flag (secrets are not put on a
        /// command line, where every user of the machine can read them).
        public let flag: String?
        public let isSecret: Bool
        /// One line on what the setting does.
        public let summary: String

        /// A whole-number setting that also takes `off`.
        public let allowsOff: Bool

        /// - Parameter flag: `""` (the default) derives the flag from the name: `HISTORY_SIZE`
        ///   is `--history-size`.
        init(
            _ defaultValue: String, range: ClosedRange<Int>? = nil, flag: String? = "", isSecret: Bool = false,
            allowsOff: Bool = false, _ summary: String
        ) {
            self.defaultValue = defaultValue
            self.range = range
            self.flag = flag
            self.isSecret = isSecret
            self.allowsOff = allowsOff
            self.summary = summary
        }
    }

    public var definition: Definition {
        switch self {
        case .bindAddress:
            Definition(
                "0.0.0.0",
                "address to listen on")
        case .tcpPort:
            Definition(
                "8888", range: 0...65535, flag: "port", allowsOff: true,
                "TCP port for plain connections (0 picks a free port; off: TLS only)")
        case .tlsPort:
            Definition(
                "off", range: 0...65535, allowsOff: true,
                "TCP port for TLS connections (off: no TLS listener); needs TLS_CERT_FILE and TLS_KEY_FILE")
        case .tlsCertFile:
            Definition(
                "",
                "PEM file of the server's certificate, then any intermediates; re-read on SIGHUP")
        case .tlsKeyFile:
            Definition(
                "",
                "PEM file of the certificate's private key; re-read on SIGHUP")
        case .tlsHandshakeTimeoutSeconds:
            Definition(
                "10", range: 1...300,
                "seconds a TLS client has to finish its handshake")
        case .webPort:
            Definition(
                "off", range: 0...65535, allowsOff: true,
                "HTTP port of the web client: the page at /, its WebSocket at /ws (off: no web listener)")
        case .webTLSPort:
            Definition(
                "off", range: 0...65535, allowsOff: true,
                "HTTPS port of the same (off: none); uses TLS_CERT_FILE and TLS_KEY_FILE")
        case .webBindAddress:
            Definition(
                "",
                "address the web listeners listen on (default: BIND_ADDRESS)")
        case .webAllowedOrigins:
            Definition(
                "",
                "comma-separated origins, besides the page's own, whose pages may open the WebSocket "
                    + "(e.g. https://chat.example.com)")
        case .webPingSeconds:
            Definition(
                "30", range: 1...3600,
                "seconds of silence after which a WebSocket client is pinged; closed if it does not answer "
                    + "in as long again")
        case .mailTransport:
            Definition(
                "",
                "how OTP mails are delivered: smtp, file (.eml files in MAIL_DIR) or log (development: "
                    + "codes go to the log); default: smtp when SMTP_HOST is set, else log")
        case .mailDir:
            Definition(
                "./mail",
                "folder for the file transport's .eml files")
        case .mailFrom:
            Definition(
                "TCP Chat <noreply@localhost>",
                "sender of OTP mails for the log and file transports")
        case .smtpHost:
            Definition(
                "",
                "SMTP server host; setting it selects the SMTP transport")
        case .smtpPort:
            Definition(
                "587", range: 1...65535,
                "SMTP server port")
        case .smtpEmail:
            Definition(
                "",
                "SMTP login; also the sender address unless SMTP_FROM names one")
        case .smtpPassword:
            Definition(
                "", flag: nil, isSecret: true,
                "SMTP password (environment or .env only; never printed); empty: no AUTH")
        case .smtpFrom:
            Definition(
                "",
                "From: header of OTP mails, e.g. 'Chat <noreply@example.com>' (default: SMTP_EMAIL)")
        case .smtpSecurity:
            Definition(
                "",
                "starttls, tls (implicit TLS) or none (loopback hosts only); default: tls for port 465, else starttls")
        case .smtpCAFile:
            Definition(
                "",
                "PEM file of extra trusted CA certificates (a private relay's CA)")
        case .smtpTimeoutSeconds:
            Definition(
                "15", range: 1...600,
                "seconds allowed to connect and for each SMTP reply (the whole session: 4x)")
        case .smtpMaxConcurrency:
            Definition(
                "4", range: 1...256,
                "SMTP sessions at once")
        case .smtpMaxQueued:
            Definition(
                "100", range: 0...100_000,
                "OTP mails waiting for an SMTP session before new ones fail at once")
        case .otpExpirationMinutes:
            Definition(
                "5", range: 1...1440,
                "minutes an OTP code stays valid")
        case .otpMaxRetries:
            Definition(
                "3", range: 1...100,
                "wrong codes allowed before the code is void and the connection closed")
        case .usernameMinLength:
            Definition(
                "3", range: 1...64,
                "shortest username")
        case .usernameMaxLength:
            Definition(
                "16", range: 1...64,
                "longest username")
        case .maxConnectionsPerIP:
            Definition(
                "1", range: 1...1_000_000,
                "connections allowed at once from one client IP")
        case .maxLineBytes:
            Definition(
                "4096", range: 1100...1_048_576,
                "longest input line in bytes; longer lines are discarded with an error")
        case .maxSendQueueBytes:
            Definition(
                "262144", range: 8192...1_073_741_824,
                "bytes queued for a client that does not read before it is disconnected")
        case .historySize:
            Definition(
                "100", range: 0...10_000,
                "lines of recent history kept per room (replayed on join, 5-minute window)")
        case .presenceNoticeMaxMembers:
            Definition(
                "500", range: 0...10_000_000,
                "rooms with more members than this do not announce joins and leaves")
        case .roomKeepEmptyDays:
            Definition(
                "30", range: 0...3650,
                "days a room other than #general is kept once empty, with its owner, invitations, topic and history (0: it goes with its last member)"
            )
        case .roomsMax:
            Definition(
                "10000", range: 1...1_000_000,
                "rooms in all, empty ones kept and #general included; creating one more is refused")
        case .roomsPerOwner:
            Definition(
                "10", range: 1...100_000,
                "rooms one e-mail address may own; creating one more is refused until one is dropped")
        case .resumeTokenDays:
            Definition(
                "30", range: 1...3650,
                "days a resume token (/token) stays valid; /logout, /logout all and a ban revoke tokens sooner")
        case .eventLoopThreads:
            Definition(
                "0", range: 0...64,
                "network threads, at most 64 (0: one per CPU core)")
        case .shutdownTimeoutSeconds:
            Definition(
                "5", range: 1...3600,
                "seconds to flush and close connections on shutdown")
        case .logLevel:
            Definition(
                "info",
                "trace, debug, info, notice, warning, error or critical")
        case .maxConnections:
            Definition(
                "10000", range: 1...1_000_000,
                "connections the server holds at once; more are told the server is full")
        case .connectionsPerIPPerMinute:
            Definition(
                "30", range: 1...100_000,
                "new connections one client IP (IPv6: one /64) may open per minute")
        case .nickChangesPerMinute:
            Definition(
                "5", range: 1...1000,
                "username changes (/nick) one account (e-mail address) may make per minute")
        case .loginTimeoutSeconds:
            Definition(
                "120", range: 5...3600,
                "seconds a connection has to finish logging in")
        case .maxEmailAttempts:
            Definition(
                "5", range: 1...100,
                "invalid e-mail addresses a connection may enter before it is closed")
        case .otpRequestIntervalSeconds:
            Definition(
                "30", range: 0...3600,
                "seconds between two codes for the same e-mail address (used codes do not count)")
        case .otpRequestsPerHour:
            Definition(
                "5", range: 1...1000,
                "unused codes per e-mail address per hour")
        case .otpRequestsPerIPPerHour:
            Definition(
                "20", range: 1...100_000,
                "codes requested from one client IP (IPv6: one /64) per hour")
        case .otpRequestsPerMinute:
            Definition(
                "120", range: 1...1_000_000,
                "codes the whole server mails per minute")
        case .messageBurst:
            Definition(
                "20", range: 1...10_000,
                "lines a user may send at once before flood control slows them")
        case .messagesPerSecond:
            Definition(
                "5", range: 1...10_000,
                "lines per second a user may send in the long run")
        case .maxQueuedLines:
            Definition(
                "1000", range: 10...1_000_000,
                "lines flood control may hold back in one unbroken flood before the client is disconnected")
        case .adminEmails:
            Definition(
                "",
                "comma-separated e-mail addresses whose users are server operators")
        case .proxyProtocol:
            Definition(
                "off",
                "on: every listener expects a PROXY protocol header (v1 or v2) first, from TRUSTED_PROXIES only")
        case .trustedProxies:
            Definition(
                "127.0.0.1/32,::1/128",
                "comma-separated address blocks (CIDR) allowed to send PROXY protocol headers, and whose "
                    + "X-Forwarded-For the web listener believes")
        case .proxyHeaderTimeoutSeconds:
            Definition(
                "5", range: 1...300,
                "seconds a proxied connection has to send its PROXY protocol header")
        case .metricsPort:
            Definition(
                "off", range: 0...65535, allowsOff: true,
                "HTTP port for GET /metrics (Prometheus) and GET /health (off: none)")
        case .metricsBindAddress:
            Definition(
                "127.0.0.1",
                "address the metrics and health endpoint listens on")
        case .dataDirectory:
            Definition(
                "",
                "folder where a node on its own journals the chat's state, so a restart keeps it (created 0700); empty: memory only"
            )
        case .dataFsync:
            Definition(
                "always",
                "with DATA_DIR: always (a command's effects wait for its record to be on disk) or interval (synced once a second)"
            )
        case .dataSnapshotSeconds:
            Definition(
                "300", range: 1...86400,
                "with DATA_DIR: seconds between snapshots of the state; older journal files go")
        case .dataSnapshotEntries:
            Definition(
                "100000", range: 1000...100_000_000,
                "with DATA_DIR: journal records after which the next snapshot comes sooner")
        case .dataRecovery:
            Definition(
                "off",
                "with DATA_DIR: salvage starts from what can be read (a damaged snapshot passed over, a damaged journal cut at the damage); off refuses to start"
            )
        case .clusterRedisURL:
            Definition(
                "", flag: nil, isSecret: true,
                "redis://[user:password@]host:port[/db] or rediss://...: run as one node of a cluster (environment or .env only; may hold a password); empty: a node on its own"
            )
        case .clusterRedisSentinels:
            Definition(
                "",
                "host:port,host:port of Redis Sentinels: run as one node of a cluster whose Redis is the primary they name, followed across failovers (instead of CLUSTER_REDIS_URL)"
            )
        case .clusterRedisMasterName:
            Definition(
                "",
                "with CLUSTER_REDIS_SENTINELS: the name the sentinels monitor the primary by")
        case .redisSentinelPassword:
            Definition(
                "", flag: nil, isSecret: true,
                "with CLUSTER_REDIS_SENTINELS: the sentinels' own password, when they have one (environment or .env only; never printed)"
            )
        case .clusterRedisTLS:
            Definition(
                "off",
                "with CLUSTER_REDIS_SENTINELS: on speaks TLS to the sentinels and the primary (as rediss:// does)")
        case .clusterRedisWaitReplicas:
            Definition(
                "1", range: 0...16,
                "with CLUSTER_REDIS_SENTINELS: the fewest replicas a log entry must reach before any node applies it (it waits for every replica the primary has, and at least this many), so a failover loses nothing a user saw (while the primary has fewer, commands are refused); 0 applies entries as the primary takes them"
            )
        case .clusterRedisWaitTimeoutMilliseconds:
            Definition(
                "1000", range: 10...5000,
                "with CLUSTER_REDIS_SENTINELS: how long entries may wait for the replicas before the node refuses commands until they arrive"
            )
        case .redisPassword:
            Definition(
                "", flag: nil, isSecret: true,
                "Redis password when the URL has none (environment or .env only; never printed)")
        case .redisCAFile:
            Definition(
                "",
                "PEM file of extra trusted CA certificates for rediss:// (a private Redis's CA)")
        case .nodeID:
            Definition(
                "",
                "this node's name in the cluster's logs and heartbeats; empty: host name plus a random suffix")
        case .clusterHeartbeatSeconds:
            Definition(
                "2", range: 1...60,
                "seconds between a node's heartbeats in a cluster")
        case .clusterNodeTimeoutSeconds:
            Definition(
                "6", range: 2...600,
                "seconds without a heartbeat after which a node counts as gone and its users leave")
        case .clusterSnapshotSeconds:
            Definition(
                "30", range: 1...3600,
                "seconds between snapshots of the shared state in Redis (the log is trimmed behind them)")
        case .clusterSnapshotEntries:
            Definition(
                "100000", range: 1000...100_000_000,
                "log records (changes) after which a snapshot is written sooner than CLUSTER_SNAPSHOT_SECONDS")
        }
    }

    /// The environment variable's name.
    public var name: String { rawValue }

    /// The default, as written in a `.env` file; empty when there is none.
    public var defaultValue: String { definition.defaultValue }

    /// One line on what the setting does.
    public var summary: String { definition.summary }

    /// Whether the value must never be printed or logged.
    public var isSecret: Bool { definition.isSecret }

    /// The values a whole-number setting accepts.
    public var range: ClosedRange<Int>? { definition.range }

    /// The command-line flag with its dashes (`--history-size`), if the setting has one.
    public var flag: String? {
        guard let flag = definition.flag else { return nil }
        return "--" + (flag.isEmpty ? String(rawValue.lowercased().map { $0 == "_" ? "-" : $0 }) : flag)
    }
}
