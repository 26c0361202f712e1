// swift-tools-version:6.1
import PackageDescription

/// Compiler settings every target of ours shares: explicit existentials, imports that are visible only
/// where they are written, and imports internal unless marked `public`.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "EvidenceLedger",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "evidence-ledger", targets: ["EvidenceLedgerCLI"]),
        .executable(name: "cerkit-bench", targets: ["CERKitBench"]),
        .library(name: "CERKit", targets: ["CERKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // Default traits off: with them SwiftPM passes defines in random order and rebuilds Hummingbird often.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
    ],
    targets: [
        // C shims: libsodium for Ed25519 (only CERKit's crypto files import it), libpq for LedgerStore.
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CLibpq", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),

        // Pure NexArt protocol: no I/O, no clock, no environment.
        .target(
            name: "CERKit",
            dependencies: [
                "CSodium",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: strict
        ),
        // Pure ledger: entries, leaf hashes, append decisions, audits. No I/O.
        .target(name: "LedgerCore", dependencies: ["CERKit"], swiftSettings: strict),
        // The SQL migrations in schema/, embedded in the binary.
        .target(
            name: "LedgerSchema",
            path: "schema",
            resources: [.embedInCode("0001_create_ledger.sql"), .embedInCode("0002_create_accounts.sql"), .embedInCode("0003_create_tree.sql"), .embedInCode("0004_create_projections.sql"), .embedInCode("0005_create_projection_skips.sql"), .embedInCode("0006_create_ledger_expect.sql"), .embedInCode("0007_create_witnessing.sql"), .embedInCode("0008_create_lifecycle.sql"), .embedInCode("0009_partition_payloads.sql"), .embedInCode("0010_retention_policies.sql"), .embedInCode("0011_retention_scopes.sql"), .embedInCode("0012_data_subjects.sql")]
        ),
        // PostgreSQL through libpq: connection, pool, migrations, event log (sequencer, batch writer),
        // tree storage, audits.
        .target(
            name: "LedgerStore",
            dependencies: [
                "CERKit", "LedgerCore", "LedgerSchema", "CLibpq",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Child processes: the embedded PostgreSQL cluster, spawned and reaped.
        .target(name: "LedgerProcesses", dependencies: ["LedgerStore"], swiftSettings: strict),
        // Read models rebuilt from the log: certificates and provenance, run chains, project bundles.
        .target(name: "LedgerProjections", dependencies: ["CERKit", "LedgerCore", "LedgerStore"], swiftSettings: strict),
        // HTTP API, node keys, accounts and quotas, background services, service assembly.
        .target(
            name: "LedgerServer",
            dependencies: [
                "CERKit", "LedgerCore", "LedgerStore", "LedgerProjections",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "EvidenceLedgerCLI",
            dependencies: [
                "CERKit", "LedgerCore", "LedgerStore", "LedgerProcesses", "LedgerServer", "LedgerProjections",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "CERKitBench",
            dependencies: ["CERKit"],
            path: "Benchmarks/CERKitBench",
            swiftSettings: strict
        ),
        // What the test targets share: locations (binary, shared fixtures), a seeded generator, fresh
        // databases in the test cluster, running blocking tests off the cooperative thread pool.
        .target(name: "LedgerTesting", dependencies: ["LedgerStore", "LedgerProcesses"], path: "Tests/LedgerTesting", swiftSettings: strict),
        .testTarget(name: "CERKitTests", dependencies: ["CERKit", "LedgerTesting"], swiftSettings: strict),
        .testTarget(name: "EvidenceLedgerCLITests", dependencies: ["CERKit", "LedgerTesting"], swiftSettings: strict),
        .testTarget(name: "LedgerCoreTests", dependencies: ["LedgerCore", "CERKit", "LedgerTesting"], swiftSettings: strict),
        .testTarget(name: "LedgerStoreTests", dependencies: ["LedgerStore", "LedgerProcesses", "LedgerCore", "CERKit", "LedgerTesting"], swiftSettings: strict),
        .testTarget(name: "LedgerProjectionsTests", dependencies: ["LedgerProjections", "LedgerStore", "LedgerCore", "CERKit", "LedgerTesting"], swiftSettings: strict),
        .testTarget(
            name: "LedgerServerTests",
            dependencies: [
                "LedgerServer", "LedgerStore", "LedgerProcesses", "CERKit", "LedgerCore", "LedgerProjections", "LedgerTesting",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
