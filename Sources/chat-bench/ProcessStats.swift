import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// CPU time and memory of a process, from /proc (Linux).
struct ProcessStats: Sendable {
    /// User + system CPU time, seconds.
    var cpuSeconds: Double
    /// The user part of it: the process's own code, where the kernel's (sockets, wake-ups)
    /// is the rest.
    var userCPUSeconds: Double
    /// Resident memory, bytes.
    var residentBytes: Int

    static func read(pid: Int32) -> ProcessStats? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let rssLine = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        let rssKiB = Int(rssLine.split(separator: " ").dropFirst().first ?? "") ?? 0
        return ProcessStats(
            cpuSeconds: (utime + stime) / ticks, userCPUSeconds: utime / ticks, residentBytes: rssKiB * 1024)
    }

    /// Each process's figures and their sum; `nil` when there is no process or one is gone.
    static func read(pids: [Int32]) -> (total: ProcessStats, each: [ProcessStats])? {
        guard !pids.isEmpty else { return nil }
        var each: [ProcessStats] = []
        for pid in pids {
            guard let stats = read(pid: pid) else { return nil }
            each.append(stats)
        }
        let total = ProcessStats(
            cpuSeconds: each.reduce(0) { $0 + $1.cpuSeconds },
            userCPUSeconds: each.reduce(0) { $0 + $1.userCPUSeconds },
            residentBytes: each.reduce(0) { $0 + $1.residentBytes })
        return (total, each)
    }

    static func current() -> ProcessStats {
        read(pid: getpid()) ?? ProcessStats(cpuSeconds: 0, userCPUSeconds: 0, residentBytes: 0)
    }
}

/// Lets this process hold many sockets: raises the soft open-files limit to the hard one.
func raiseOpenFileLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}
