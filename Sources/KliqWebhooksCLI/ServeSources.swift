import Configuration
import Foundation
import Synchronization

extension ServeSettings {
    /// The four sources of `serve`'s settings, in the order they win — command line, environment,
    /// config file, defaults — as swift-configuration providers behind one `ConfigReader`, with an access
    /// reporter that notes which provider gave each value.
    struct Sources {
        private let reader: ConfigReader
        private let provenance = Provenance()
        private let file: ConfigFile?

        static let commandLine = "command line"
        static let configFile = "config file"
        static let defaults = "default"

        init(flags: [String: [String]], file: ConfigFile?, environment: [String: String]) {
            var given: [AbsoluteConfigKey: ConfigValue] = [:]
            var filed: [AbsoluteConfigKey: ConfigValue] = [:]
            var defaults: [AbsoluteConfigKey: ConfigValue] = [:]
            for option in ServeOption.all {
                let key = AbsoluteConfigKey([option.name])
                if let values = flags[option.name], !values.isEmpty { given[key] = ConfigValue(.stringArray(values), isSecret: false) }
                if let entries = file?.values[option.name] { filed[key] = ConfigValue(.stringArray(entries.map(\.value)), isSecret: false) }
                if !option.defaultValue.isEmpty { defaults[key] = ConfigValue(.stringArray(option.defaultValue), isSecret: false) }
            }
            // Each setting's variable (`KLIQ_PORT`, or its own, like `KLIQ_TENANT_ID`); lists one value a
            // line (an --exec command may hold commas). An empty variable is not set.
            let variables = Dictionary(uniqueKeysWithValues: ServeOption.all.map { ($0.name, $0.environmentName) })
            let env = EnvironmentVariablesProvider(
                environmentVariables: environment.filter { !$0.value.isEmpty },
                secretsSpecifier: .specific(["KLIQ_DATABASE_URL"]), arraySeparator: "\n"
            ).mapKeys { key in
                guard let name = key.components.first, let variable = variables[name] else { return key }
                return AbsoluteConfigKey([variable.lowercased().replacingOccurrences(of: "_", with: "-")])
            }
            self.reader = ConfigReader(
                providers: [
                    InMemoryProvider(name: Self.commandLine, values: given), env,
                    InMemoryProvider(name: Self.configFile, values: filed), InMemoryProvider(name: Self.defaults, values: defaults),
                ],
                accessReporter: self.provenance
            )
            self.file = file
        }

        /// The values of `option` (none when it is not set) and where each came from: `--port`,
        /// `KLIQ_PORT`, `PATH:LINE`, `default`.
        func values(of option: ServeOption) -> (values: [String], origins: [String]) {
            let raw = self.reader.stringArray(forKey: ConfigKey([option.name])) ?? []
            guard !raw.isEmpty else { return ([], []) }
            let (provider, encodedKey) = self.provenance.source(of: option.name) ?? ("", option.environmentName)
            if provider.contains(Self.commandLine) { return (raw, raw.map { _ in "--" + option.name }) }
            if provider.contains(Self.configFile), let entries = self.file?.values[option.name], let path = self.file?.path {
                return (raw, entries.map { "\(path):\($0.line)" })
            }
            if provider.contains(Self.defaults) { return (raw, raw.map { _ in "default" }) }
            // The environment: lists of URLs and proxies may also be comma-separated.
            var values = raw
            if option.list {
                let separators: Set<Character> = option.name == "exec" ? [] : [","]
                values = raw.flatMap { $0.split(whereSeparator: { separators.contains($0) }).map(String.init) }
                    .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            }
            return (values, values.map { _ in encodedKey })
        }
    }

    /// Which provider answered each lookup, as swift-configuration reports it.
    final class Provenance: AccessReporter {
        private let sources = Mutex<[String: (provider: String, encodedKey: String)]>([:])

        func report(_ event: AccessEvent) {
            for result in event.providerResults {
                guard case .success(let lookup) = result.result, lookup.value != nil else { continue }
                let name = event.metadata.key.components.joined(separator: ".")
                self.sources.withLock { $0[name] = (result.providerName, lookup.encodedKey) }
                return
            }
        }

        func source(of name: String) -> (provider: String, encodedKey: String)? { self.sources.withLock { $0[name] } }
    }
}
