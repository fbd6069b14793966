// swift-tools-version: 6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "swift-tcp-chat",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "chat-server", targets: ["chat-server"]),
        .executable(name: "chat-bench", targets: ["chat-bench"]),
        .executable(name: "chat-client", targets: ["chat-client"]),
        .library(name: "ChatClientCore", targets: ["ChatClientCore"]),
        .library(name: "RedisClient", targets: ["RedisClient"]),
        .library(name: "ChatCore", targets: ["ChatCore"]),
        .library(name: "ChatMail", targets: ["ChatMail"]),
        .library(name: "ChatHub", targets: ["ChatHub"]),
        .library(name: "ChatCluster", targets: ["ChatCluster"]),
        .library(name: "ChatServer", targets: ["ChatServer"]),
        .library(name: "ChatWebClient", targets: ["ChatWebClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .target(
            name: "ChatCore",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ChatMail",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // The hub: the shared state and its commands (pure), the log that orders them on one
        // node and its codec, and delivery on each event loop. Knows no connection, session,
        // setting or store.
        .target(
            name: "ChatHub",
            dependencies: [
                "ChatCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The hub log across nodes: the node's decisions as a pure machine, and the drivers
        // that carry them out over Redis Streams (DESIGN.md, "Growing past one machine").
        .target(
            name: "ChatCluster",
            dependencies: [
                "ChatCore",
                "ChatHub",
                "RedisClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // The web client (a page, its style and script), compiled into the binary and served
        // by the web listener.
        .target(
            name: "ChatWebClient",
            dependencies: ["ChatCore"],
            resources: [
                .embedInCode("Resources/index.html"),
                .embedInCode("Resources/chat.css"),
                .embedInCode("Resources/chat.js"),
                .embedInCode("Resources/lines.js"),
                .embedInCode("Resources/favicon.svg"),
            ],
            swiftSettings: swiftSettings
        ),
        // glibc's malloc_trim, for the server's MemoryReclaimer.
        .target(name: "CSystemMemory"),
        // accept4 and pipe2, for the server's own accepting (ConnectionAcceptor).
        .target(name: "CSockets"),
        .target(
            name: "ChatServer",
            dependencies: [
                "ChatCore",
                "ChatHub",
                "ChatCluster",
                "ChatMail",
                "ChatWebClient",
                "RedisClient",
                "CSystemMemory",
                "CSockets",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "chat-server",
            dependencies: [
                "ChatServer",
                "ChatMail",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The terminal client: what can be tested without a terminal (line editing, keys,
        // completion, colouring, the login's prompts) is here.
        .target(
            name: "ChatClientCore",
            dependencies: ["ChatCore"],
            swiftSettings: swiftSettings
        ),
        // A small RESP3 client on NIO, with no chat knowledge (DESIGN.md, "Growing past one
        // machine"); its shape follows valkey-swift's.
        .target(
            name: "RedisClient",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // termios raw mode, restored on crash signals, and the window size (C, so the signal
        // handler is plain async-signal-safe C).
        .target(name: "CTerminal"),
        .executableTarget(
            name: "chat-client",
            dependencies: [
                "ChatClientCore",
                "ChatCore",
                "CTerminal",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The load generator that measures a running server (BENCHMARKS.md).
        .executableTarget(
            name: "chat-bench",
            dependencies: [
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // Helpers shared by the test targets: certificates minted at test time, the SMTP
        // test server process. Not shipped.
        .target(
            name: "ChatTestSupport",
            dependencies: [
                "ChatCore",
                "ChatMail",
                "ChatServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Tests/ChatTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ChatCoreTests",
            dependencies: ["ChatCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ChatClientCoreTests",
            dependencies: ["ChatClientCore", "ChatCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RedisClientTests",
            dependencies: [
                "RedisClient",
                "ChatTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ChatBenchTests",
            dependencies: ["chat-bench", "ChatTestSupport", "ChatServer"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ChatMailTests",
            dependencies: [
                "ChatMail",
                "ChatTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ChatHubTests",
            dependencies: [
                "ChatHub",
                "ChatCore",
                "ChatTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ChatClusterTests",
            dependencies: [
                "ChatCluster",
                "ChatHub",
                "ChatCore",
                "RedisClient",
                "ChatTestSupport",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ChatServerTests",
            dependencies: [
                "ChatServer",
                "ChatHub",
                "ChatCluster",
                "RedisClient",
                "ChatCore",
                "ChatMail",
                "ChatTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // Attacks a real server over real sockets while an honest client chats alongside.
        .testTarget(
            name: "ChatAdversarialTests",
            dependencies: [
                "ChatServer",
                "ChatHub",
                "ChatCluster",
                "ChatCore",
                "ChatTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
