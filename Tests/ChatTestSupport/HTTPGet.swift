import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A real HTTP client's request (Foundation's URLSession): what a scraper or a load
/// balancer's health check sends.
public func httpRequest(
    _ method: String = "GET", port: Int, path: String, host: String = "127.0.0.1", headers: [String: String] = [:]
) async throws -> (status: Int, headers: [String: String], body: String) {
    var request = URLRequest(url: URL(string: "http://\(host):\(port)\(path)")!)
    request.httpMethod = method
    for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
    request.timeoutInterval = 10
    let session = URLSession(configuration: .ephemeral)
    defer { session.finishTasksAndInvalidate() }
    let (data, response) = try await session.data(for: request)
    guard let http = response as? HTTPURLResponse else { throw TestFailure("not an HTTP response") }
    var headers: [String: String] = [:]
    for (name, value) in http.allHeaderFields {
        if let name = name as? String, let value = value as? String { headers[name.lowercased()] = value }
    }
    return (http.statusCode, headers, String(decoding: data, as: UTF8.self))
}

/// Samples of a Prometheus text exposition, by series (`name{label="value"}` as written).
public struct PrometheusSamples: Sendable {
    public let values: [String: Double]

    public init(_ text: String) throws {
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                throw TestFailure("not a sample line: \(line)")
            }
            values[String(line[..<space])] = value
        }
        self.values = values
    }

    /// The sample's value; a missing series is a failure, not 0.
    public func value(_ series: String) throws -> Double {
        guard let value = values[series] else { throw TestFailure("no series \(series) in the scrape") }
        return value
    }
}
