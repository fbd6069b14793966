import ChatServer
import ServiceLifecycle
import UnixSignals

/// Re-reads the TLS certificate and key on SIGHUP (after a renewal), until the server
/// shuts down.
struct CertificateReloadOnHangup: Service {
    let server: ChatServer

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            server.reloadCertificates()
        }
    }
}
