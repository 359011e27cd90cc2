import ArgumentParser

/// `kliq-webhooks`: receive KLIQ's CV-job webhooks.
@main
struct KliqWebhooksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kliq-webhooks",
        abstract: "Receive KLIQ webhooks: verify, deduplicate, persist as JSON files, and hand events to your handlers.",
        discussion: """
            Signing secrets come from KLIQ_WEBHOOK_SECRET (several separated by commas, for rotation) or \
            from --secret-file. See README.md for the HTTP answers and the data directory layout.
            """,
        version: "0.5.1",
        subcommands: [ServeCommand.self, EventsCommand.self, JobsCommand.self, ReplayCommand.self, SignCommand.self, VerifyCommand.self,
                      MigrateCommand.self, ExportCommand.self, ImportCommand.self]
    )
}
