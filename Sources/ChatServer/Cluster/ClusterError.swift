/// Why a node could not join its cluster.
enum ClusterError: Error, CustomStringConvertible {
    case unreachable(url: String, reason: String)
    case settingsDiffer(cluster: String, node: String)
    case snapshot(String)

    var description: String {
        switch self {
        case .unreachable(let url, let reason):
            "Cannot join the cluster: Redis at \(url) cannot be used (\(reason))"
        case .settingsDiffer(let cluster, let node):
            "Cannot join the cluster: its nodes decide with other settings. Cluster: \(cluster). This node: \(node)"
        case .snapshot(let reason):
            "Cannot join the cluster: its snapshot is refused, not misread: \(reason)"
        }
    }
}

extension Duration {
    /// Whole milliseconds, as Redis takes them.
    var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
