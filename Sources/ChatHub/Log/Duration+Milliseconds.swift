extension Duration {
    /// Whole milliseconds, as Redis takes them.
    package var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
