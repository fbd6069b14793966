extension Setting {
    /// A command-line argument that names no setting, or a flag without its value.
    public struct CommandLineError: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    /// The setting whose flag is `flag` (`--history-size`).
    public static func named(flag: String) -> Setting? {
        allCases.first { $0.flag == flag }
    }

    /// Reads setting flags (`--history-size 50` or `--history-size=50`) into values by
    /// setting. A later flag for the same setting wins.
    /// - Throws: ``CommandLineError`` for an argument that is no setting's flag, or a flag
    ///   with no value.
    public static func values(fromFlags arguments: [String]) throws(CommandLineError) -> [Setting: String] {
        var values: [Setting: String] = [:]
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            index += 1
            let flag: Substring
            var value: String?
            if let equals = argument.firstIndex(of: "=") {
                flag = argument[..<equals]
                value = String(argument[argument.index(after: equals)...])
            } else {
                flag = Substring(argument)
            }
            guard flag.hasPrefix("--"), let setting = named(flag: String(flag)) else {
                throw CommandLineError(description: "Unknown option '\(flag)'; see --help")
            }
            if value == nil {
                guard index < arguments.endIndex, !arguments[index].hasPrefix("--") else {
                    throw CommandLineError(description: "Missing value for '\(flag)'")
                }
                value = arguments[index]
                index += 1
            }
            values[setting] = value
        }
        return values
    }

    /// The settings part of `chat-server --help`, made from the catalogue.
    public static var helpText: String {
        var lines = [
            "Settings come from, in rising priority: defaults, a .env file, environment variables, flags.",
            "",
            "SETTINGS (environment name, flag):",
        ]
        for setting in allCases {
            var head = "  \(setting.name)"
            if let flag = setting.flag { head += ", \(flag) <value>" }
            var notes: [String] = []
            if !setting.defaultValue.isEmpty { notes.append("default: \(setting.defaultValue)") }
            if let range = setting.range {
                notes.append(
                    "\(range.lowerBound)-\(range.upperBound)" + (setting.definition.allowsOff ? " or off" : ""))
            }
            if setting.flag == nil { notes.append("environment or .env only") }
            if !notes.isEmpty { head += " (\(notes.joined(separator: "; ")))" }
            lines.append(head)
            lines.append("      \(setting.summary)")
        }
        return lines.joined(separator: "\n")
    }
}
