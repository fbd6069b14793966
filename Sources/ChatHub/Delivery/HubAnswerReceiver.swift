/// Receives the hub's answers to a session's requests, on the session's event loop.
package protocol HubAnswerReceiver: AnyObject {
    func hubAnswered(_ answer: HubAnswer)
}
