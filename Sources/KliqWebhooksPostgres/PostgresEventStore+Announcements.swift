import Foundation
import KliqWebhooks
import Logging
import NIOCore
import PostgresNIO
import Synchronization

// MARK: - Announcements

/// Job ids whose finished state this process stored, until ``PostgresEventStore/announceJobs()`` sends
/// them. `NOTIFY` takes a database-wide lock when its transaction commits, so it is kept out of the
/// accept's transaction and sent for many jobs at once, in one short transaction every 50 ms.
final class Announcements: Sendable {
    private let pending = Mutex<Set<String>>([])

    func add(_ jobId: String) { _ = self.pending.withLock { $0.insert(jobId) } }

    func take() -> [String] { self.pending.withLock { pending in defer { pending.removeAll() }; return Array(pending) } }
}

extension PostgresEventStore {
    /// Sends the pending announcements every 50 ms until cancelled (then once more). A failure is
    /// logged and the ids dropped: announcements are hints, and waiters read the store again anyway.
    func announceJobs() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(50))
            let ids = self.announcements.take()
            guard !ids.isEmpty else { continue }
            do {
                try await self.run("SELECT pg_notify($1, id) FROM unnest($2::text[]) AS id", [self.notificationChannel, ids], "announce finished jobs")
            } catch {
                self.logger.debug("could not announce finished jobs", metadata: ["kliq.error": "\(error)"])
            }
        }
    }

    /// Job ids from `NOTIFY` on ``notificationChannel``, on a connection of their own that is opened
    /// again (after a second, doubling up to 30 s) whenever it is lost.
    public func jobChanges() -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1024))
        let channel = self.notificationChannel
        let task = Task {
            var pause = Duration.seconds(1)
            while !Task.isCancelled {
                do {
                    try await self.client.withConnection { connection in
                        try await connection.listen(on: channel) { notifications in
                            pause = .seconds(1)
                            for try await notification in notifications { continuation.yield(notification.payload) }
                        }
                    }
                } catch {
                    if Task.isCancelled { break }
                    self.logger.warning("listening for job announcements failed; trying again", metadata: [
                        "kliq.error": "\(self.storageError(error, "listen").message)", "kliq.retry_in": "\(pause)",
                    ])
                }
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(30))
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }
}
