/// Receives the hub's answers to a session's requests, on the session's event loop.
protocol HubAnswerReceiver: AnyObject {
    func hubAnswered(_ answer: HubAnswer)
}
