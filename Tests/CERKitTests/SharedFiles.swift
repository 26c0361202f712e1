import Foundation
import LedgerTesting

/// Locates `../shared` (fixtures and vectors) next to the repository, or `LEDGER_SHARED_DIR`.
enum SharedFiles {
    static var root: URL { TestLocations.sharedRoot }

    static func url(_ path: String) -> URL { root.appendingPathComponent(path) }

    static func data(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: url(path))) }

    static func text(_ path: String) throws -> String { String(decoding: try data(path), as: UTF8.self) }

    static func list(_ directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: url(directory).path).sorted()
    }
}
