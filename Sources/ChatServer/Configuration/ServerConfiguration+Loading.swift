import Configuration
import Foundation
import SystemPackage

extension ServerConfiguration {
    /// A `.env` file that was asked for by name and could not be read.
    public struct EnvironmentFileError: Error, CustomStringConvertible {
        public let path: String
        public let underlying: any Error
        public var description: String { "Cannot read environment file \(path): \(underlying)" }
    }

    /// Reads the settings in rising priority: defaults, the `.env` file, the process
    /// environment, command-line flags.
    /// - Parameters:
    ///   - flags: values given on the command line.
    ///   - environmentFile: the `.env` file's path.
    ///   - requireEnvironmentFile: fail when the file is missing (it was named explicitly).
    ///   - environment: the process environment.
    public static func load(
        flags: [Setting: String],
        environmentFile: String = ".env",
        requireEnvironmentFile: Bool = false,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> ServerConfiguration {
        let secrets = SecretsSpecifier<String, String>.specific(
            Set(Setting.allCases.filter(\.isSecret).map(\.name))
        )
        let fileProvider: EnvironmentVariablesProvider
        do {
            fileProvider = try await EnvironmentVariablesProvider(
                environmentFilePath: FilePath(environmentFile),
                allowMissing: !requireEnvironmentFile,
                secretsSpecifier: secrets
            )
        } catch {
            throw EnvironmentFileError(path: environmentFile, underlying: error)
        }
        let flagValues = Dictionary(uniqueKeysWithValues: flags.map { ($0.key.name, $0.value) })
        let reader = ConfigReader(providers: [
            EnvironmentVariablesProvider(environmentVariables: flagValues, secretsSpecifier: secrets),
            EnvironmentVariablesProvider(environmentVariables: environment, secretsSpecifier: secrets),
            fileProvider,
        ])
        do {
            return try ServerConfiguration(reader: reader)
        } catch {
            throw error.givenValue(SettingValues(reader: reader).given(error.setting))
        }
    }
}
