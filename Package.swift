// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let testSettings: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "kliq-webhooks",
    // Linux only: the file store uses Linux system calls (syncfs, Glibc). No platforms line claims macOS,
    // which does not build (see the README's "Requirements").
    products: [
        .library(name: "KliqWebhooks", targets: ["KliqWebhooks"]),
        .library(name: "KliqWebhooksHummingbird", targets: ["KliqWebhooksHummingbird"]),
        .library(name: "KliqWebhooksPostgres", targets: ["KliqWebhooksPostgres"]),
        .library(name: "KliqWebhooksPolling", targets: ["KliqWebhooksPolling"]),
        .library(name: "KliqWebhooksConsole", targets: ["KliqWebhooksConsole"]),
        .library(name: "KliqWebhooksTesting", targets: ["KliqWebhooksTesting"]),
        .library(name: "KliqWebhooksHummingbirdTesting", targets: ["KliqWebhooksHummingbirdTesting"]),
        .executable(name: "kliq-webhooks", targets: ["KliqWebhooksCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0", traits: []),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // Microbenchmarks of the hot path: `swift run -c release kliq-microbenchmarks` (see BENCHMARKS.md).
        .executableTarget(
            name: "kliq-microbenchmarks",
            dependencies: ["KliqWebhooks"],
            path: "Benchmarks/Micro",
            swiftSettings: swiftSettings
        ),
        // The floor the durable path is compared with: verify the HMAC, answer 200 (Benchmarks/ab.sh).
        .executableTarget(
            name: "kliq-bare-receiver",
            dependencies: ["KliqWebhooks", .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/Bare",
            swiftSettings: swiftSettings
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]
        ),
        // syncfs(2) for the file store's checkpoints: a GNU extension Swift's Glibc module leaves out.
        .target(name: "CKliqSystem"),
        .target(
            name: "KliqWebhooks",
            dependencies: [
                "COpenSSL",
                "CKliqSystem",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KliqWebhooksHummingbird",
            dependencies: [
                "KliqWebhooks",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The PostgreSQL store: several replicas on one database behave as one receiver. Its own
        // library, so users of the files store do not build postgres-nio.
        .target(
            name: "KliqWebhooksPostgres",
            dependencies: [
                "KliqWebhooks",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The polling fallback: a small client of KLIQ's API and the reconciler that reads tracked jobs
        // no webhook finished.
        .target(
            name: "KliqWebhooksPolling",
            dependencies: [
                "KliqWebhooks",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The operator console: the admin API (and, next, its pages), through the store protocol only.
        .target(
            name: "KliqWebhooksConsole",
            dependencies: [
                "KliqWebhooks",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KliqWebhooksTesting",
            dependencies: [
                "KliqWebhooks",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KliqWebhooksHummingbirdTesting",
            dependencies: [
                "KliqWebhooks",
                .product(name: "Logging", package: "swift-log"),
                "KliqWebhooksHummingbird",
                "KliqWebhooksTesting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "KliqWebhooksCLI",
            dependencies: [
                "KliqWebhooks",
                "KliqWebhooksConsole",
                "KliqWebhooksHummingbird",
                "KliqWebhooksPolling",
                "KliqWebhooksPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        // The tests' one way to start a child process (swift-subprocess; Foundation's Process.run can
        // crash on Linux, see ChildProcess.swift). Not a product: users never build it.
        .target(
            name: "KliqTestSupport",
            dependencies: [
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Tests/Support",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "KliqWebhooksFuzz",
            dependencies: ["KliqWebhooks"],
            path: "Fuzz",
            exclude: ["run.sh", "README.md"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ShelfAlertsExample",
            dependencies: [
                "KliqWebhooks",
                "KliqWebhooksHummingbird",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/ShelfAlerts"
        ),
        .executableTarget(
            name: "AwaitCompletionExample",
            dependencies: [
                "KliqWebhooks",
                "KliqWebhooksHummingbird",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Examples/AwaitCompletion"
        ),
        .testTarget(
            name: "KliqWebhooksTests",
            dependencies: [
                "KliqWebhooks", "KliqWebhooksTesting", "KliqTestSupport",
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "KliqWebhooksPostgresTests",
            dependencies: [
                "KliqWebhooks",
                "KliqWebhooksPostgres",
                "KliqWebhooksTesting",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "KliqWebhooksPollingTests",
            dependencies: [
                "KliqWebhooks",
                "KliqWebhooksHummingbirdTesting",
                "KliqWebhooksPolling",
                "KliqWebhooksTesting",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "KliqWebhooksHummingbirdTests",
            dependencies: [
                "KliqWebhooks",
                "KliqWebhooksConsole",
                "KliqWebhooksHummingbird",
                "KliqWebhooksHummingbirdTesting",
                "KliqWebhooksTesting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "KliqWebhooksCLITests",
            dependencies: [
                "KliqWebhooksCLI",
                "KliqWebhooksFuzz",
                "AwaitCompletionExample",
                "ShelfAlertsExample",
                "KliqWebhooksHummingbirdTesting",
                "KliqWebhooksTesting",
                "KliqTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: testSettings
        ),
    ]
)
