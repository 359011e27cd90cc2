import KliqWebhooks

/// What a `FileEventStore` wrote into a data directory, read back for assertions.
///
/// ```swift
/// let files = StoredFiles(directory: dir.path)
/// #expect(files.event(id: "evt_shelf_0001") == fixture.body)
/// #expect(try files.job(id: "job_shelf_0001")?.status == .completed)
/// ```
public struct StoredFiles: Sendable {
    let directory: DataDirectory

    public init(directory: String) {
        self.directory = DataDirectory(path: directory)
    }

    /// The stored body of event `id`, byte for byte (`events/<id>.json`).
    public func event(id: String) -> [UInt8]? { self.directory.eventBody(id: id) }

    /// The stored state of job `id` (`jobs/<id>.json`).
    public func job(id: String) throws -> Job? {
        try self.directory.jobDocument(id: id).map { try Job(json: JSONValue(parsing: $0)) }
    }

    /// The handler ledger entry of event `id`.
    public func ledger(eventId: String) -> LedgerEntry? { self.directory.ledgerEntry(eventId: eventId) }

    /// Ledger entries on one shelf (`active`, `dead`, `done`).
    public func ledger(on shelf: LedgerEntry.Shelf) -> [LedgerEntry] { self.directory.ledgerEntries(on: shelf) }

    /// Every stored job.
    public func jobs() throws -> [Job] {
        try self.directory.jobDocuments().map { try Job(json: JSONValue(parsing: $0)) }
    }
}
