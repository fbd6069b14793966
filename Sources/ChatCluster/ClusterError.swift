/// Why a node could not join its cluster.
package enum ClusterError: Error, CustomStringConvertible {
    case unreachable(url: String, reason: String)
    case settingsDiffer(cluster: String, node: String)
    case snapshot(String)

    package var description: String {
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
