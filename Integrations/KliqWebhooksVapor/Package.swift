// swift-tools-version:6.1
import PackageDescription

// The Vapor adapter: its own package, so users of the core and of the Hummingbird route never build Vapor.
let package = Package(
    name: "kliq-webhooks-vapor",
    products: [
        .library(name: "KliqWebhooksVapor", targets: ["KliqWebhooksVapor"]),
    ],
    dependencies: [
        .package(name: "kliq-webhooks", path: "../.."),
        .package(url: "https://github.com/vapor/vapor.git", from: "4.122.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .target(
            name: "KliqWebhooksVapor",
            dependencies: [
                .product(name: "KliqWebhooks", package: "kliq-webhooks"),
                .product(name: "Vapor", package: "vapor"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
        .testTarget(
            name: "KliqWebhooksVaporTests",
            dependencies: [
                "KliqWebhooksVapor",
                .product(name: "KliqWebhooksTesting", package: "kliq-webhooks"),
                .product(name: "VaporTesting", package: "vapor"),
            ]
        ),
    ]
)
