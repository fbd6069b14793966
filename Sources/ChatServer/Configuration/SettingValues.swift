import ChatCore
import Configuration

/// Reads settings as text from a `ConfigReader`, falling back to the catalogue defaults.
struct SettingValues {
    let reader: ConfigReader

    func string(_ setting: Setting) throws(ConfigurationError) -> String {
        let value = reader.string(forKey: ConfigKey(setting.name), isSecret: setting.isSecret)
        return (value ?? setting.defaultValue).trimmingSpaces
    }

    /// The value the setting was given, if any (not its default).
    func given(_ setting: Setting) -> String? {
        reader.string(forKey: ConfigKey(setting.name), isSecret: setting.isSecret)?.trimmingSpaces
    }

    /// A whole-number setting that may be `off` (`nil`), within its range.
    func integerOrOff(_ setting: Setting) throws(ConfigurationError) -> Int? {
        if setting.definition.allowsOff, try string(setting).lowercased() == "off" { return nil }
        return try integer(setting)
    }

    /// A setting that is `on` or `off`.
    func onOff(_ setting: Setting) throws(ConfigurationError) -> Bool {
        switch try string(setting).lowercased() {
        case "on": return true
        case "off": return false
        case let other: throw ConfigurationError(setting, "must be on or off, not '\(other)'")
        }
    }

    /// A whole-number setting, within the range its definition gives.
    func integer(_ setting: Setting) throws(ConfigurationError) -> Int {
        let text = try string(setting)
        guard let value = Int(text) else {
            throw ConfigurationError(setting, "'\(text)' is not a whole number")
        }
        guard let range = setting.range else { preconditionFailure("\(setting.name) has no range") }
        guard range.contains(value) else {
            throw ConfigurationError(setting, "\(value) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        guard let trimmed = InputLine.trimmed(self) else { return "" }
        return String(trimmed)
    }
}
