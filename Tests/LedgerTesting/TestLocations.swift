public import Foundation

/// Where tests find the repository, the shared fixtures and vectors (`LEDGER_SHARED_DIR`, default
/// `../shared` beside the repository) and the built binary (`EVIDENCE_LEDGER_BIN`, default
/// `.build/debug/evidence-ledger`).
public enum TestLocations {
    /// The repository root (this file is `Tests/LedgerTesting/TestLocations.swift`).
    public static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    public static let sharedRoot: URL = {
        if let dir = ProcessInfo.processInfo.environment["LEDGER_SHARED_DIR"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        return repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared")
    }()

    /// A file under the shared directory (`fixtures/…`, `vectors/…`).
    public static func shared(_ path: String) -> URL { sharedRoot.appendingPathComponent(path) }

    /// The bytes of a shared file.
    public static func sharedBytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: shared(path))) }

    public static var binary: String {
        ProcessInfo.processInfo.environment["EVIDENCE_LEDGER_BIN"] ?? repositoryRoot.appendingPathComponent(".build/debug/evidence-ledger").path
    }
}

/// A deterministic PRNG (SplitMix64), so property and fuzz tests are reproducible.
public struct SeededGenerator: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0..<bound`.
    public mutating func next(_ bound: Int) -> Int { Int.random(in: 0..<bound, using: &self) }
}
