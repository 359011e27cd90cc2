import KliqWebhooks
import Logging
import ServiceLifecycle

/// Inside `serve`: takes re-drive requests that `kliq-webhooks events redeliver` drops into the data
/// directory's `inbox/`, and hands them to the running receiver. Polls twice a second.
struct RedriveInbox: Service {
    let directory: DataDirectory
    let receiver: Receiver
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            for request in self.directory.takeRequests() {
                do {
                    let count: Int
                    if let eventId = request.eventId {
                        count = try await self.receiver.redeliver(eventId: eventId, handler: request.handler) ? 1 : 0
                    } else {
                        count = try await self.receiver.redeliverDead()
                    }
                    self.logger.notice("re-drive requested", metadata: [
                        "kliq.event_id": .string(request.eventId ?? "*dead*"), "kliq.handler": .string(request.handler ?? "*"),
                        "kliq.count": "\(count)",
                    ])
                } catch {
                    self.logger.error("re-drive failed", metadata: ["kliq.error": "\(error)"])
                }
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }
}
