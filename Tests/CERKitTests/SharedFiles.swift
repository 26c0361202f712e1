import Foundation

/// Locates `../shared` (fixtures and vectors) next to the repository, or `LEDGER_SHARED_DIR`.
enum SharedFiles {
    static let root: URL = {
        if let dir = ProcessInfo.processInfo.environment["LEDGER_SHARED_DIR"] {
            return URL(fileURLWithPath: dir)
        }
        // Tests/CERKitTests/SharedFiles.swift -> repository root -> its parent
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared")
    }()

    static func url(_ path: String) -> URL { root.appendingPathComponent(path) }

    static func data(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: url(path))) }

    static func text(_ path: String) throws -> String { String(decoding: try data(path), as: UTF8.self) }

    static func list(_ directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: url(directory).path).sorted()
    }
}
