// swift-tools-version: 6.1
import PackageDescription

// Layers, bottom up; each target depends only on targets above it in this list (docs/ARCHITECTURE.md):
//   CKernels      C hot loops (quantized dots, matmul tiles) with run-time CPU dispatch
//   ModelFormats  GGUF reader and writer
//   Kernels       Swift API over CKernels, the thread pool                     (CKernels, ModelFormats)
//   Tokenizers, ChatTemplates                                                   (ModelFormats; none)
//   Models        architectures, KV cache                                      (Kernels, ModelFormats)
//   Grammar       GBNF and JSON Schema grammars, the token-mask automaton      (ModelFormats)
//   Engine        loading, sampling, generation, the batching scheduler       (Models, Tokenizers, ChatTemplates, Grammar)
//   Export        model export: GGUF (llama.cpp's quantizers and type rules), HF folders, LoRA (Kernels, ModelFormats)
//   Hub           the Hugging Face hub client and the shared HF cache        (async-http-client, swift-crypto)
//   Ledger        records, envelopes, Merkle log, blocks, receipts, stores     (swift-crypto, GRDB)
//   LedgerPostgres the ledger on PostgreSQL, shared by several gateways        (Ledger, postgres-nio)
//   Node          data directory, ledger appender, accounts and keys, hardware (Ledger, LedgerPostgres) — no HTTP
//   Server        the OpenAI-compatible HTTP API and web chat on Hummingbird  (Engine, Node)
//   VerityCLI     the `verity` binary                                          (Engine, Node, Server)
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
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
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
        .target(name: "Grammar", dependencies: ["ModelFormats"]),
        .target(name: "Engine", dependencies: ["Models", "Tokenizers", "ChatTemplates", "ModelFormats", "Kernels", "Grammar"]),
        .target(
            name: "Export",
            dependencies: ["Kernels", "ModelFormats", "Tokenizers", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "Hub",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "Ledger",
            dependencies: [.product(name: "Crypto", package: "swift-crypto"), .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .target(
            name: "LedgerPostgres",
            dependencies: [
                "Ledger",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Node",
            dependencies: [
                "Ledger", "LedgerPostgres",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Server",
            dependencies: [
                "Engine", "Grammar", "Export", "ChatTemplates", "Tokenizers", "ModelFormats", "Ledger", "Node",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("WebChat")]
        ),
        .executableTarget(
            name: "VerityCLI",
            dependencies: [
                "Engine", "Export", "Models", "Kernels", "ModelFormats", "ChatTemplates", "Server", "Ledger", "LedgerPostgres", "Node", "Hub",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Test helpers every test target shares: where the provisioned models live, a seeded RNG, fixtures.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "ModelFormatsTests", dependencies: ["ModelFormats", "TestSupport"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "ModelFormats", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers", "ModelFormats", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "ChatTemplatesTests", dependencies: ["ChatTemplates"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "ModelFormats", "Kernels", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Models", "ModelFormats", "Tokenizers", "ChatTemplates", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "GrammarTests", dependencies: ["Grammar", "Engine", "ModelFormats", "Tokenizers", "TestSupport"]),
        .testTarget(name: "ExportTests", dependencies: ["Export", "Kernels", "ModelFormats", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "HubTests", dependencies: ["Hub", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["VerityCLI", "TestSupport"]),
        .testTarget(
            name: "NodeTests",
            dependencies: ["Node", "Ledger", "LedgerPostgres", "TestSupport", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "Server", "Node", "Engine", "Ledger", "TestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "LedgerTests",
            dependencies: ["Ledger", .product(name: "Crypto", package: "swift-crypto"), .product(name: "GRDB", package: "GRDB.swift")],
            exclude: ["Fixtures"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
