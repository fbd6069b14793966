import ChatCluster
import Foundation
import RedisClient

/// The cluster's settings: `CLUSTER_REDIS_URL`, or `CLUSTER_REDIS_SENTINELS` and the settings
/// that go with them, and those every node shares (heartbeat, node timeout, snapshots).
extension ServerConfiguration {
    static func cluster(_ values: SettingValues) throws(ConfigurationError) -> ClusterSettings? {
        let text = try values.string(.clusterRedisURL)
        let sentinels = try Self.sentinels(values)
        guard !text.isEmpty || sentinels != nil else { return nil }
        var url: RedisURL
        if let sentinels {
            guard text.isEmpty else {
                throw ConfigurationError(.clusterRedisSentinels, "set either it or CLUSTER_REDIS_URL, not both")
            }
            // Where the primary is, the sentinels say; the rest is what a URL would give.
            url = RedisURL(host: sentinels.masterName, usesTLS: try values.onOff(.clusterRedisTLS))
        } else {
            do {
                url = try RedisURL(parsing: text)
            } catch {
                throw ConfigurationError(.clusterRedisURL, "\(error)")
            }
        }
        let password = try values.string(.redisPassword)
        if url.password == nil && !password.isEmpty { url.password = password }
        let caFile = try values.string(.redisCAFile)
        if !caFile.isEmpty && !FileManager.default.isReadableFile(atPath: caFile) {
            throw ConfigurationError(.redisCAFile, "'\(caFile)' cannot be read")
        }
        var nodeID = try values.string(.nodeID)
        if nodeID.isEmpty {
            let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "node"
            nodeID = "\(host)-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
        }
        guard nodeID.utf8.count <= 64, nodeID.allSatisfy({ $0.isASCII && !$0.isWhitespace && !$0.isNewline }) else {
            throw ConfigurationError(.nodeID, "must be up to 64 printable ASCII characters without spaces")
        }
        let heartbeat = try values.integer(.clusterHeartbeatSeconds)
        let timeout = try values.integer(.clusterNodeTimeoutSeconds)
        guard timeout > heartbeat else {
            throw ConfigurationError(
                .clusterNodeTimeoutSeconds, "must be more than CLUSTER_HEARTBEAT_SECONDS (\(heartbeat))")
        }
        return ClusterSettings(
            redis: url, caFile: caFile.isEmpty ? nil : caFile, sentinels: sentinels, nodeID: nodeID,
            heartbeat: .seconds(heartbeat),
            nodeTimeout: .seconds(timeout), snapshotInterval: .seconds(try values.integer(.clusterSnapshotSeconds)),
            snapshotEntries: try values.integer(.clusterSnapshotEntries))
    }

    /// `CLUSTER_REDIS_SENTINELS` and the settings that go with it; `nil` when it is not set.
    private static func sentinels(_ values: SettingValues) throws(ConfigurationError) -> ClusterSettings.Sentinels? {
        let text = try values.string(.clusterRedisSentinels)
        guard !text.isEmpty else { return nil }
        guard let addresses = RedisAddress.list(parsing: text) else {
            throw ConfigurationError(
                .clusterRedisSentinels,
                "must be host:port pairs separated by commas (e.g. 10.0.0.1:26379,10.0.0.2:26379)")
        }
        let name = try values.string(.clusterRedisMasterName)
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
            throw ConfigurationError(
                .clusterRedisMasterName, "must name the primary the sentinels monitor (sentinel monitor <name> ...)")
        }
        let password = try values.string(.redisSentinelPassword)
        return ClusterSettings.Sentinels(
            addresses: addresses, masterName: name, password: password.isEmpty ? nil : password,
            replicasToWait: try values.integer(.clusterRedisWaitReplicas),
            replicationTimeout: .milliseconds(try values.integer(.clusterRedisWaitTimeoutMilliseconds)))
    }
}
