// swift-tools-version: 6.1
// Micro-benchmarks of swift-tcp-chat, run by hand (not by CI):
//   cd Benchmarks && swift package benchmark
// See BENCHMARKS.md for what they measure and the committed thresholds.

import PackageDescription

import struct Foundation.URL

// A path dependency is known by its folder's name (the clone's name, not the package's).
let chatPackage = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .lastPathComponent

let package = Package(
    name: "ChatBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
    ],
    targets: [
        .executableTarget(
            name: "FanOut",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ChatServer", package: chatPackage),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            path: "FanOut",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
