/// The users one user ignores: by lower-cased name for the deliveries that skip them, with
/// the name as it was spelled for `/ignore`'s list. One list per session, held where the
/// deliveries are decided (``LocalSession``) and changed by the ``CommandRouter``.
package struct IgnoreList: Sendable, Equatable {
    /// Lower-cased name to the name as spelled.
    private var names: [String: String] = [:]

    var isEmpty: Bool { names.isEmpty }

    /// - Parameter key: a lower-cased username.
    func contains(key: String) -> Bool { names[key] != nil }

    package mutating func insert(_ name: String) {
        names[name.lowercased()] = name
    }

    /// - Returns: the name as it was spelled, or `nil` when it was not on the list.
    package mutating func remove(_ name: String) -> String? {
        names.removeValue(forKey: name.lowercased())
    }

    /// The user ignored as `key` took the name `name`: the list follows them (and no one
    /// who takes the old name later is ignored for it).
    mutating func rename(key: String, to name: String) {
        guard names.removeValue(forKey: key) != nil else { return }
        insert(name)
    }

    /// The names as spelled, sorted without regard to case.
    package var sortedNames: [String] { names.values.sorted { $0.lowercased() < $1.lowercased() } }
}
