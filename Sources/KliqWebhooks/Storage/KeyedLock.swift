import Synchronization

/// Mutual exclusion per key for async code: holders of different keys run concurrently, holders of
/// one key one after another, in arrival order. Keys with no holder take no memory.
final class KeyedLock: Sendable {
    private let waiters = Mutex<[String: [CheckedContinuation<Void, Never>]]>([:])

    func withLock<T: Sendable>(_ key: String, _ body: () async throws -> T) async throws -> T {
        await self.acquire(key)
        do {
            let value = try await body()
            self.release(key)
            return value
        } catch {
            self.release(key)
            throw error
        }
    }

    private func acquire(_ key: String) async {
        let free = self.waiters.withLock { table in
            guard table[key] == nil else { return false }
            table[key] = []
            return true
        }
        if free { return }
        await withCheckedContinuation { continuation in
            let freeNow = self.waiters.withLock { table in
                guard table[key] != nil else {
                    table[key] = []
                    return true
                }
                table[key]!.append(continuation)
                return false
            }
            if freeNow { continuation.resume() }
        }
    }

    private func release(_ key: String) {
        let next = self.waiters.withLock { table -> CheckedContinuation<Void, Never>? in
            guard var queue = table[key], !queue.isEmpty else {
                table[key] = nil
                return nil
            }
            let first = queue.removeFirst()
            table[key] = queue
            return first
        }
        next?.resume()
    }
}
