import CERKit
import Foundation
import LedgerCore
import LedgerProcesses
import LedgerStore
import LedgerTesting
import Synchronization
import Testing

/// `evidence-ledger witness serve` as a separate process, with its own state in PostgreSQL.
final class TestWitness {
    let directory: URL
    let keyFile: String
    let vkey: String
    let name: String
    private(set) var process: ChildProcess?
    private(set) var port = 0
    let errors: String

    init(name: String, database: String, logs: [String]) throws {
        self.name = name
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("witness-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        keyFile = directory.appendingPathComponent("witness.key").path
        errors = directory.appendingPathComponent("witness.err").path
        let out = directory.appendingPathComponent("keygen.out").path
        let gen = try ChildProcess([TestLocations.binary, "witness", "key", "generate", "--name", name, "--out", keyFile], stdout: out)
        guard gen.exitCode == 0 else { throw HTTPFailure(description: "witness key generate failed") }
        vkey = try String(contentsOfFile: out, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let serveOut = directory.appendingPathComponent("serve.out").path
        let p = try ChildProcess(
            [TestLocations.binary, "witness", "serve", "--database-url", database, "--key", keyFile, "--port", "0"] + logs.flatMap { ["--log", $0] },
            stdout: serveOut, stderr: errors)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: serveOut, encoding: .utf8)) ?? ""
            if let range = text.range(of: "listening on http://127.0.0.1:"), let port = Int(text[range.upperBound...].prefix(while: \.isNumber)) {
                self.port = port
                process = p
                return
            }
            if !p.isRunning { throw HTTPFailure(description: "the witness exited: \((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "")") }
            usleep(50_000)
        }
        throw HTTPFailure(description: "the witness did not start")
    }

    var url: String { "http://127.0.0.1:\(port)" }
    var spec: String { "\(vkey)@\(url)" }
    var verifier: NoteVerifier { try! NoteVerifier(parsing: vkey) }

    func add(_ body: [UInt8]) throws -> HTTPResult { try RawHTTP.post(port: port, "/add-checkpoint", json: body) }

    func stop() {
        process?.send(SIGKILL)
        process = nil
    }

    deinit { stop() }
}

@Suite(.blockingIO) struct WitnessServerTests {
    static let origin = "example.org/witnessed-log"
    static let logKey = Ed25519SigningKey(seed: (0..<32).map { UInt8($0) })!
    static var logVerifier: NoteVerifier { NoteVerifier(name: origin, publicKey: logKey.publicKey) }
    static func leaves(_ n: Int, tag: String = "") -> [[UInt8]] { (0..<n).map { Merkle.leafHash(Array("entry \($0)\(tag)".utf8)) } }

    static func note(_ leaves: [[UInt8]], origin: String = origin, key: Ed25519SigningKey = logKey) throws -> [UInt8] {
        let body = Checkpoint(origin: origin, size: UInt64(leaves.count), rootHash: Merkle.root(leaves))
        return try SignedNote.sign(text: body.text, signers: [try NoteSigner(name: origin, key: key)])
    }

    static func request(old: Int, _ leaves: [[UInt8]], note: [UInt8]? = nil) throws -> [UInt8] {
        let proof = old > 0 && old < leaves.count ? Merkle.consistencyProof(oldSize: old, leafHashes: leaves) ?? [] : []
        return AddCheckpointRequest(oldSize: UInt64(old), proof: proof, checkpoint: try note ?? Self.note(leaves)).body
    }

    @Test func everyResponseOfAddCheckpointAndNoRollbackUnderConcurrentSubmissions() throws {
        let database = try TestDatabase.create(migrate: false, prefix: "w_")
        let witness = try TestWitness(name: "witness.test/w1", database: database, logs: [Self.logVerifier.encoded])
        let all = Self.leaves(20)
        // 404: an origin the witness does not know (signed by the same key, under another name).
        let unknown = try witness.add(try Self.request(old: 0, Array(all[..<3]), note: try Self.note(Array(all[..<3]), origin: "example.org/other")))
        #expect(unknown.status == 404, "\(unknown.text)")
        // 403: no signature by a key it trusts for the origin.
        let stranger = Ed25519SigningKey(seed: Array(repeating: 200, count: 32))!
        let forbidden = try witness.add(try Self.request(old: 0, Array(all[..<3]), note: try Self.note(Array(all[..<3]), key: stranger)))
        #expect(forbidden.status == 403, "\(forbidden.text)")
        // 400: unreadable, and an old size above the checkpoint's.
        #expect(try witness.add(Array("hello\n".utf8)).status == 400)
        #expect(try witness.add(AddCheckpointRequest(oldSize: 9, proof: [], checkpoint: try Self.note(Array(all[..<3]))).body).status == 400)
        // 200: the first checkpoint; the cosignature verifies with the key `witness key generate` printed.
        let first = try witness.add(try Self.request(old: 0, Array(all[..<4])))
        #expect(first.status == 200, "\(first.text)")
        let cosigned = try Self.note(Array(all[..<4])) + first.body
        #expect(try WitnessQuorum.check(cosigned, witnesses: [witness.verifier], quorum: 1) == ["witness.test/w1"])
        // 409: the old size is not the witness's; the body names its size.
        let conflict = try witness.add(try Self.request(old: 0, Array(all[..<6])))
        #expect(conflict.status == 409 && conflict.text == "4\n" && conflict.header("Content-Type") == "text/x.tlog.size", "\(conflict)")
        // 422: a consistency proof that does not verify.
        var bad = try #require(Merkle.consistencyProof(oldSize: 4, leafHashes: Array(all[..<6])))
        bad[0][31] ^= 1
        let unprocessable = try witness.add(AddCheckpointRequest(oldSize: 4, proof: bad, checkpoint: try Self.note(Array(all[..<6]))).body)
        #expect(unprocessable.status == 422, "\(unprocessable.text)")
        #expect(try witness.add(try Self.request(old: 4, Array(all[..<6]))).status == 200)
        // 409 on a split view: another tree at the size it cosigned.
        let forked = Array(all[..<5]) + Self.leaves(1, tag: "forged")
        let split = try witness.add(AddCheckpointRequest(oldSize: 6, proof: [], checkpoint: try Self.note(forked)).body)
        #expect(split.status == 409 && split.text == "6\n", "\(split)")
        #expect(try witness.add(try Self.request(old: 6, Array(all[..<6]))).status == 200, "the same tree again is cosigned again")

        // Concurrent submissions from the same old size: one wins, the rest learn its size; the state never goes back.
        let sizes = Array(7...14)
        let results = Mutex<[Int: HTTPResult]>([:])
        let port = witness.port
        DispatchQueue.concurrentPerform(iterations: sizes.count) { i in
            let r = try? RawHTTP.post(port: port, "/add-checkpoint", json: try Self.request(old: 6, Array(all[..<sizes[i]])))
            if let r { results.withLock { $0[sizes[i]] = r } }
        }
        let answered = results.withLock { $0 }
        #expect(answered.count == sizes.count)
        let winners = answered.filter { $0.value.status == 200 }.map(\.key)
        #expect(winners.count == 1, "\(answered.mapValues(\.status))")
        let winner = try #require(winners.first)
        for (size, r) in answered where size != winner { #expect(r.status == 409 && r.text == "\(winner)\n", "\(size): \(r)") }
        let stored = try PostgresConnection(conninfo: database, statementTimeoutMilliseconds: 10_000, role: nil)
        defer { stored.close() }
        let row = try stored.query("SELECT tree_size, encode(root_hash, 'base64') FROM witness_checkpoints WHERE origin = \(Self.origin)").single("state")
        #expect(try row.int64(0) == Int64(winner) && row[1] == Base64.encode(Merkle.root(Array(all[..<winner]))))
        // A late submission from below is refused, not applied.
        let late = try witness.add(try Self.request(old: 6, Array(all[..<15])))
        #expect(late.status == 409 && late.text == "\(winner)\n")
        // The witness's state survives a restart (it is in PostgreSQL).
        witness.stop()
        let again = try TestWitness(name: "witness.test/w1b", database: database, logs: [Self.logVerifier.encoded])
        let resumed = try again.add(try Self.request(old: 0, Array(all[..<16])))
        #expect(resumed.status == 409 && resumed.text == "\(winner)\n")
    }
}
