/// Why a Redis command did not get its answer.
public enum RedisError: Error, Equatable, Sendable {
    /// The server answered with an error (`-ERR ...`, `-WRONGPASS ...`): its text.
    case server(String)
    /// The connection closed (or broke) before the answer came. Whether the server ran the
    /// command is not known.
    case connectionClosed
    /// No answer within the command timeout; the connection is closed, since the answers
    /// of commands sent after it can no longer be told apart.
    case timeout
    /// The server sent something that is not RESP3.
    case protocolError(String)
    /// The connection could not be made: why.
    case connectFailed(String)
}
