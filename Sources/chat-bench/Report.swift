import Foundation
import Histogram

/// What a run measured: a summary for people and one JSON line for scripts.
struct Report {
    struct Phase {
        var label: String
        var seconds: Double
        var stats: LoopStats.Snapshot
        var serverCPUSeconds: Double?
        /// The user part of ``serverCPUSeconds`` (the rest is the kernel's).
        var serverUserCPUSeconds: Double?
        /// With several `--server-pid`s: each process's CPU seconds, in their order.
        var serverCPUSecondsEach: [Double] = []
        var serverRSSBytes: Int?
        var benchCPUSeconds: Double = 0
        var missingAtEnd = 0

        var deliveriesPerSecond: Double { Double(stats.deliveries) / seconds }
        /// Server CPU per delivered line, microseconds.
        var cpuPerDelivery: Double? { perDelivery(serverCPUSeconds) }
        var userCPUPerDelivery: Double? { perDelivery(serverUserCPUSeconds) }

        private func perDelivery(_ seconds: Double?) -> Double? {
            seconds.map { stats.deliveries > 0 ? $0 * 1e6 / Double(stats.deliveries) : 0 }
        }
        func percentile(_ p: Double) -> Double { Double(stats.latency.valueAtPercentile(p)) / 1e6 }
    }

    var mode: String
    var clients: Int
    var loginSeconds: Double = 0
    var loginLatency = Histogram<UInt64>(highestTrackableValue: 600_000_000_000)
    var loginServerCPUSeconds: Double?
    var loginBenchCPUSeconds: Double = 0
    var phases: [Phase] = []
    var serverRSSBytes: Int?
    var rssPerConnection: Double?
    var slowDisconnectedAfter: [Double?] = []

    private static func ms(_ nanos: UInt64) -> Double { Double(nanos) / 1e6 }

    var summary: String {
        var lines = [
            "chat-bench \(mode): \(clients) clients",
            String(
                format: "  login: %.0f/s (%.2f s in all), latency p50 %.1f ms, p99 %.1f ms, max %.1f ms",
                Double(clients) / max(loginSeconds, 1e-9), loginSeconds,
                Self.ms(loginLatency.valueAtPercentile(50)), Self.ms(loginLatency.valueAtPercentile(99)),
                Self.ms(loginLatency.max)),
        ]
        if let cpu = loginServerCPUSeconds {
            lines.append(
                String(
                    format: "    server CPU %.2f s = %.0f µs per login; bench CPU %.2f s", cpu,
                    cpu * 1e6 / Double(max(clients, 1)), loginBenchCPUSeconds))
        }
        for phase in phases {
            lines.append(
                String(
                    format:
                        "  %@: %.0f deliveries/s over %.1f s; latency p50 %.2f / p90 %.2f / p99 %.2f / p99.9 %.2f / max %.2f ms",
                    phase.label, phase.deliveriesPerSecond, phase.seconds, phase.percentile(50), phase.percentile(90),
                    phase.percentile(99), phase.percentile(99.9), Double(phase.stats.latency.max) / 1e6))
            lines.append(
                "    lost \(phase.stats.lost), duplicates \(phase.stats.duplicates), out of order \(phase.stats.reordered), "
                    + "missing at end \(phase.missingAtEnd)")
            if let cpu = phase.serverCPUSeconds, let perDelivery = phase.cpuPerDelivery {
                lines.append(
                    String(
                        format: "    server CPU %.2f s = %.3f µs per delivery (user %.3f), RSS %.1f MiB", cpu,
                        perDelivery, phase.userCPUPerDelivery ?? 0, Double(phase.serverRSSBytes ?? 0) / 1_048_576))
            }
            if !phase.serverCPUSecondsEach.isEmpty {
                let each = phase.serverCPUSecondsEach.map {
                    String(
                        format: "%.2f s (%.3f µs per delivery)", $0,
                        phase.stats.deliveries > 0 ? $0 * 1e6 / Double(phase.stats.deliveries) : 0)
                }
                lines.append("    each process: " + each.joined(separator: ", "))
            }
            lines.append(
                String(
                    format: "    bench CPU %.2f s = %.3f µs per received line", phase.benchCPUSeconds,
                    phase.stats.deliveries > 0 ? phase.benchCPUSeconds * 1e6 / Double(phase.stats.deliveries) : 0))
        }
        if let rssPerConnection, let serverRSSBytes {
            lines.append(
                String(
                    format: "  idle: server RSS %.1f MiB, %.0f bytes (%.2f KiB) per logged-in connection",
                    Double(serverRSSBytes) / 1_048_576, rssPerConnection, rssPerConnection / 1024))
        }
        if !slowDisconnectedAfter.isEmpty {
            let text = slowDisconnectedAfter.map { $0.map { String(format: "%.2f s", $0) } ?? "still connected" }
            lines.append("  slow clients disconnected after: \(text.joined(separator: ", "))")
        }
        return lines.joined(separator: "\n")
    }

    var json: String {
        var object: [String: Any] = [
            "mode": mode, "clients": clients, "login_seconds": loginSeconds,
            "logins_per_second": Double(clients) / max(loginSeconds, 1e-9),
            "login_p50_ms": Self.ms(loginLatency.valueAtPercentile(50)),
            "login_p99_ms": Self.ms(loginLatency.valueAtPercentile(99)),
            "login_bench_cpu_seconds": loginBenchCPUSeconds,
        ]
        if let cpu = loginServerCPUSeconds { object["login_server_cpu_seconds"] = cpu }
        object["phases"] = phases.map { phase -> [String: Any] in
            var entry: [String: Any] = [
                "label": phase.label, "seconds": phase.seconds, "deliveries": phase.stats.deliveries,
                "deliveries_per_second": phase.deliveriesPerSecond, "p50_ms": phase.percentile(50),
                "p90_ms": phase.percentile(90), "p99_ms": phase.percentile(99), "p999_ms": phase.percentile(99.9),
                "max_ms": Double(phase.stats.latency.max) / 1e6, "lost": phase.stats.lost,
                "out_of_order": phase.stats.reordered, "duplicates": phase.stats.duplicates,
                "missing_at_end": phase.missingAtEnd,
                "bench_cpu_seconds": phase.benchCPUSeconds,
            ]
            if let cpu = phase.serverCPUSeconds { entry["server_cpu_seconds"] = cpu }
            if let perDelivery = phase.cpuPerDelivery { entry["server_cpu_us_per_delivery"] = perDelivery }
            if let user = phase.userCPUPerDelivery { entry["server_user_cpu_us_per_delivery"] = user }
            if let rss = phase.serverRSSBytes { entry["server_rss_bytes"] = rss }
            if !phase.serverCPUSecondsEach.isEmpty { entry["server_cpu_seconds_each"] = phase.serverCPUSecondsEach }
            return entry
        }
        if let rssPerConnection { object["server_rss_bytes_per_connection"] = rssPerConnection }
        if let serverRSSBytes { object["server_rss_bytes"] = serverRSSBytes }
        if !slowDisconnectedAfter.isEmpty {
            object["slow_disconnected_after_seconds"] = slowDisconnectedAfter.map { $0 ?? -1 }
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
