/// A setting with a value the server cannot use. The message names the setting and never
/// contains a secret's value.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public let setting: Setting
    public let problem: String
    /// The value the setting was given, when it was given one and is not secret.
    public private(set) var value: String?

    public init(_ setting: Setting, _ problem: String) {
        self.setting = setting
        self.problem = problem
    }

    /// The same error, naming the value given (never a secret's).
    func givenValue(_ value: String?) -> ConfigurationError {
        var error = self
        error.value = setting.isSecret ? nil : value
        return error
    }

    /// `Invalid setting NAME: problem`, with the value given when the problem does not
    /// quote it already.
    public var description: String {
        let given = value.map { !$0.isEmpty && !problem.contains($0) ? " (given: '\($0)')" : "" } ?? ""
        return "Invalid setting \(setting.name): \(problem)\(given)"
    }
}
