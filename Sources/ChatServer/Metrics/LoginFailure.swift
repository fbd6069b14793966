/// Why a step of a login failed (a label of `chat_login_failures_total`). A user who mistypes
/// their code and then logs in counts one failure and one login.
enum LoginFailure: String, CaseIterable, Sendable {
    case invalidEmail = "invalid_email"
    case invalidCode = "invalid_code"
    case codeExpired = "code_expired"
    case noCode = "no_code"
    case tooManyAttempts = "too_many_attempts"
    case invalidUsername = "invalid_username"
    case usernameTaken = "username_taken"
    /// `/resume` with a token that is unknown, expired or revoked, or throttled.
    case invalidToken = "invalid_token"
    case banned
    case timedOut = "timed_out"
    /// A cluster node could not reach Redis for the code request or the name.
    case chatUnavailable = "chat_unavailable"
}
