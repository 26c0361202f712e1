// swift-tools-version:6.1
import PackageDescription

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
            ]
        ),
        .executableTarget(
            name: "EvidenceLedgerCLI",
            dependencies: [
                "CERKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "CERKitBench",
            dependencies: ["CERKit"],
            path: "Benchmarks/CERKitBench"
        ),
        .testTarget(name: "CERKitTests", dependencies: ["CERKit"]),
        .testTarget(name: "EvidenceLedgerCLITests", dependencies: ["CERKit"]),
    ],
    swiftLanguageModes: [.v6]
)
