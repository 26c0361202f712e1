import CERKit
import Foundation
import LedgerTesting
import Testing
@testable import LedgerCore

/// Signed notes and checkpoints against shared/vectors/signed-note (C2SP, golang.org/x/mod,
/// transparency-dev; see its SOURCES.md and cases.json).
@Suite struct SignedNoteVectorTests {
    static var root: URL { TestLocations.shared("vectors/signed-note") }

    static func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: root.appendingPathComponent(path))) }
    static var cases: [JSONValue] { (try? JSONParser.parse(bytes("cases.json")))?["cases"]?.arrayValue ?? [] }
    static func strings(_ v: JSONValue?) -> [String] { v?.arrayValue?.compactMap(\.stringValue) ?? [] }

    @Test func everyCaseBehavesAsIndexed() throws {
        #expect(Self.cases.count >= 10)
        for c in Self.cases {
            let name = c["name"]?.stringValue ?? "?"
            let file = c["note"]?.stringValue ?? ""
            if file.contains("{") { continue }  // the tessera series has its own test
            let note = try SignedNote(parsing: try Self.bytes(file))
            let verifiers = try Self.strings(c["vkeys"]).map { vkey throws(SignedNoteError) in try NoteVerifier(parsing: vkey) }
            let result = note.verify(with: verifiers)
            if let open = c["expectOpen"]?.boolValue { #expect(result.isOpen == open, "\(name): \(result)") }
            if c["expectVerified"] != nil { #expect(result.verified.sorted() == Self.strings(c["expectVerified"]).sorted(), "\(name)") }
            if c["expectUnverified"] != nil { #expect(result.unverified.sorted() == Self.strings(c["expectUnverified"]).sorted(), "\(name)") }
            #expect(result.invalid.isEmpty, "\(name): \(result.invalid)")
            if let expected = c["checkpoint"]?.objectValue {
                let checkpoint = try Checkpoint(parsing: note.text)
                #expect(checkpoint.origin == expected["origin"]?.stringValue, "\(name)")
                #expect(checkpoint.size == UInt64(expected["size"]?.numberValue ?? -1), "\(name)")
                #expect(Base64.encode(checkpoint.rootHash) == expected["rootHashB64"]?.stringValue, "\(name)")
                #expect(checkpoint.text == note.text, "\(name): formatting the parsed checkpoint gives its text back")
            }
            if let parse = c["parseOnly"], let keyId = parse["keyIdHex"]?.stringValue {
                #expect(Hex.encode(note.signatures[0].keyId) == keyId, "\(name)")
                #expect(note.signatures[0].signature.count == Int(parse["sigLen"]?.numberValue ?? -1), "\(name)")
            }
            if let skey = c["signWith"]?.stringValue {
                // Ed25519 is deterministic: signing the text again reproduces the note byte for byte.
                #expect(try SignedNote.sign(text: note.text, signers: [try NoteSigner(parsing: skey)]) == (try Self.bytes(file)), "\(name)")
            }
            if let origin = c["expectedOrigin"]?.stringValue {
                #expect(throws: SignedNoteError.self, "\(name)") { try Checkpoint.open(try Self.bytes(file), origin: origin, verifiers: verifiers) }
                let real = try Checkpoint(parsing: note.text).origin
                #expect(try Checkpoint.open(try Self.bytes(file), origin: real, verifiers: verifiers).origin == real)
            }
        }
    }

    @Test func tesseraCheckpointsVerifyAndCommitToTheirLeaves() throws {
        let keys = String(decoding: try Self.bytes("tessera-testlog/keys.txt"), as: UTF8.self).split(separator: "\n").map(String.init)
        let verifier = try NoteVerifier(parsing: try #require(keys.first { $0.hasPrefix("example.com/log/testdata+") }))
        let signer = try NoteSigner(parsing: try #require(keys.first { $0.hasPrefix("PRIVATE+KEY+") }))
        let words = try #require(keys.last { !$0.hasPrefix("#") && !$0.contains("+") }).split(separator: " ").map { Array($0.utf8) }
        #expect(words.count == 15)
        let leaves = words.map(Merkle.leafHash)
        for n in 0...15 {
            let note = try Self.bytes("tessera-testlog/log/checkpoint.\(n)")
            let checkpoint = try Checkpoint.open(note, origin: "example.com/log/testdata", verifiers: [verifier])
            #expect(checkpoint.size == UInt64(n))
            #expect(checkpoint.rootHash == Merkle.root(Array(leaves.prefix(n))), "checkpoint.\(n)")
            #expect(try SignedNote.sign(text: checkpoint.text, signers: [signer]) == note, "re-signing checkpoint.\(n) reproduces it")
        }
    }

    @Test func malformedVerifierKeysAreRefused() throws {
        let bad = String(decoding: try Self.bytes("golang-mod/bad-vkeys.txt"), as: UTF8.self).split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(bad.count == 2)
        for line in bad { #expect(throws: SignedNoteError.self, "\(line)") { try NoteVerifier(parsing: String(line)) } }
        // As upstream: every proper substring and every single-byte increment of a valid key is refused.
        let good = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
        #expect(try NoteVerifier(parsing: good).encoded == good)
        let u = Array(good.utf8)
        for start in 0..<u.count {
            for end in (start + 1)...u.count where !(start == 0 && end == u.count) {
                #expect(throws: SignedNoteError.self) { try NoteVerifier(parsing: String(decoding: u[start..<end], as: UTF8.self)) }
            }
        }
        for i in 0..<u.count {
            var changed = u
            changed[i] &+= 1
            #expect(throws: SignedNoteError.self, "byte \(i)") { try NoteVerifier(parsing: String(decoding: changed, as: UTF8.self)) }
        }
    }

    @Test func aSignedCheckpointRoundTripsAndTamperingIsFound() throws {
        let signer = try NoteSigner(name: "ledger.example/log", key: Ed25519SigningKey(seed: [UInt8](repeating: 7, count: 32))!)
        let checkpoint = Checkpoint(origin: "ledger.example/log", size: 3, rootHash: Merkle.root([[1], [2], [3]].map(Merkle.leafHash)))
        let note = try SignedNote.sign(text: checkpoint.text, signers: [signer])
        #expect(try Checkpoint.open(note, origin: "ledger.example/log", verifiers: [signer.verifier]) == checkpoint)
        var tampered = note
        tampered[tampered.firstIndex(of: UInt8(ascii: "3"))!] = UInt8(ascii: "4")
        #expect(throws: SignedNoteError.self) { try Checkpoint.open(tampered, origin: "ledger.example/log", verifiers: [signer.verifier]) }
        #expect(throws: SignedNoteError.self) { try SignedNote(parsing: Array("no blank line\n".utf8)) }
        #expect(throws: SignedNoteError.self) { try Checkpoint(parsing: Array("o\n007\nAAAA\n".utf8)) }
    }
}
