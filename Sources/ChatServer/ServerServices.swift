import ChatMail
import Logging

/// What every connection handler shares: created once per server.
struct ServerServices: Sendable {
    let configuration: ServerConfiguration
    let hub: ChatHub
    let otp: OTPService
    let mailer: any Mailer
    let logger: Logger
}
