/// The limits a node's state decides with, in one line, for the cluster's settings check:
/// replicas that decided with different limits would drift apart, so a node whose line
/// differs from the cluster's is not let in.
///
/// Derived from ``HubState/Configuration`` field by field (nested fields too), each named in
/// the settings' style (`historySize` is `HISTORY_SIZE`): a field added to the
/// configuration is checked without a list here to keep up.
package enum SettingsFingerprint {
    /// Changes when the line's form does: nodes of two forms never match.
    static let version = "hub-log/3"

    package static func of(_ configuration: HubState.Configuration) -> String {
        ([version] + pairs(of: configuration, named: "")).joined(separator: " ")
    }

    private static func pairs(of value: Any, named name: String) -> [String] {
        if let duration = value as? Duration { return ["\(name)=\(duration.milliseconds)ms"] }
        let mirror = Mirror(reflecting: value)
        guard mirror.displayStyle == .struct, !mirror.children.isEmpty else { return ["\(name)=\(value)"] }
        return mirror.children.flatMap { child in
            let field = settingName(child.label ?? "_")
            return pairs(of: child.value, named: name.isEmpty ? field : "\(name)_\(field)")
        }
    }

    /// `connectionsPerIPPerMinute` as `CONNECTIONS_PER_IP_PER_MINUTE`.
    static func settingName(_ field: String) -> String {
        let characters = Array(field)
        var name = ""
        for (index, character) in characters.enumerated() {
            if index > 0, character.isUppercase {
                let previous = characters[index - 1]
                let next = index + 1 < characters.count ? characters[index + 1] : nil
                if !previous.isUppercase || next?.isLowercase == true { name.append("_") }
            }
            name.append(contentsOf: character.uppercased())
        }
        return name
    }
}
