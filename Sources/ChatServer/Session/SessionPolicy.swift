import ChatCore

extension SessionStateMachine {
    /// What every session of a server decides by: one object the server's sessions share,
    /// so that an idle connection does not carry a copy of each setting.
    final class Policy: Sendable {
        let usernameRules: UsernameRules
        /// Invalid addresses allowed before the connection is closed.
        let maxEmailAttempts: Int
        /// Lower-cased addresses whose users are operators.
        let adminEmails: Set<String>
        /// Makes resume tokens (random; tests give their own).
        let makeToken: @Sendable () -> ResumeToken

        init(
            usernameRules: UsernameRules, maxEmailAttempts: Int = 5, adminEmails: Set<String> = [],
            makeToken: @escaping @Sendable () -> ResumeToken = ResumeToken.random
        ) {
            self.usernameRules = usernameRules
            self.maxEmailAttempts = maxEmailAttempts
            self.adminEmails = adminEmails
            self.makeToken = makeToken
        }
    }
}
