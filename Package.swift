// swift-tools-version: 6.1
import PackageDescription

// Engine stack, bottom up (see ../shared/ARCHITECTURE.md):
// CKernels (C hot loops) → Kernels (Swift API, dispatch, thread pool) → ModelFormats (GGUF)
// → Tokenizers, ChatTemplates → Models (architectures, KV cache) → Engine (sampling, generation)
// → Server (OpenAI-compatible HTTP API, continuous batching) → VerityCLI (the `verity` binary).
let package = Package(
    name: "Verity",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "verity", targets: ["VerityCLI"]),
        .library(name: "Engine", targets: ["Engine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .target(
            name: "CKernels",
            cSettings: [.unsafeFlags(["-O3", "-fno-math-errno", "-ffp-contract=off"])]
        ),
        .target(name: "ModelFormats"),
        .target(name: "Kernels", dependencies: ["CKernels", "ModelFormats"]),
        .target(name: "Tokenizers", dependencies: ["ModelFormats"]),
        .target(name: "ChatTemplates"),
        .target(name: "Models", dependencies: ["Kernels", "ModelFormats"]),
        .target(name: "Engine", dependencies: ["Models", "Tokenizers", "ChatTemplates", "ModelFormats", "Kernels"]),
        .target(
            name: "Ledger",
            dependencies: [.product(name: "Crypto", package: "swift-crypto"), .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .target(
            name: "Server",
            dependencies: [
                "Engine", "ChatTemplates", "Tokenizers", "ModelFormats", "Ledger",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("WebChat")]
        ),
        .executableTarget(
            name: "VerityCLI",
            dependencies: [
                "Engine", "Models", "Server", "Ledger",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "ModelFormatsTests", dependencies: ["ModelFormats"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "ModelFormats"], exclude: ["Fixtures"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers", "ModelFormats"], exclude: ["Fixtures"]),
        .testTarget(name: "ChatTemplatesTests", dependencies: ["ChatTemplates"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "ModelFormats", "Kernels"], exclude: ["Fixtures"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Models", "ModelFormats", "Tokenizers", "ChatTemplates"], exclude: ["Fixtures"]),
        .testTarget(name: "CLITests", dependencies: ["VerityCLI"]),
        .testTarget(
            name: "LedgerTests",
            dependencies: ["Ledger", .product(name: "Crypto", package: "swift-crypto"), .product(name: "GRDB", package: "GRDB.swift")],
            exclude: ["Fixtures"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
