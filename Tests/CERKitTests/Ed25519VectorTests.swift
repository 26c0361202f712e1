import Foundation
import Testing
@testable import CERKit

/// Wycheproof (all 151, as labelled) and CCTV (libsodium 1.0.18 accepts exactly the listed 43), see
/// shared/vectors/ed25519/SOURCES.md.
@Suite struct Ed25519VectorTests {
    @Test func wycheproofVectorsBehaveAsLabelled() throws {
        let doc = try JSONParser.parse(try SharedFiles.data("vectors/ed25519/wycheproof/ed25519_test.json"))
        var count = 0
        var failures: [String] = []
        for group in doc["testGroups"]!.arrayValue! {
            let pk = Hex.decode(group["publicKey"]!["pk"]!.stringValue!)!
            for t in group["tests"]!.arrayValue! {
                count += 1
                let msg = Hex.decode(t["msg"]!.stringValue!)!
                let sig = Hex.decode(t["sig"]!.stringValue!)!
                let valid = Ed25519.isValidSignature(sig, of: msg, publicKey: pk)
                let expected = t["result"]!.stringValue!
                if (expected == "valid") != valid && expected != "acceptable" {
                    failures.append("tcId \(Int(t["tcId"]!.numberValue!)): expected \(expected)")
                }
            }
        }
        #expect(count == 151)
        #expect(failures.isEmpty, "\(failures)")
    }

    @Test func cctvVectorsMatchLibsodiumsMeasuredAcceptanceSet() throws {
        let vectors = try JSONParser.parse(try SharedFiles.data("vectors/ed25519/cctv/ed25519vectors.json")).arrayValue!
        let accepted = Set(try SharedFiles.text("vectors/ed25519/cctv/libsodium-1.0.18-accepted-numbers.txt")
            .split(whereSeparator: \.isNewline).compactMap { Int($0) })
        #expect(vectors.count == 914)
        #expect(accepted.count == 43)
        var mismatches: [Int] = []
        for v in vectors {
            let n = Int(v["number"]!.numberValue!)
            let ok = Ed25519.isValidSignature(
                Hex.decode(v["sig"]!.stringValue!)!, of: Array(v["msg"]!.stringValue!.utf8), publicKey: Hex.decode(v["key"]!.stringValue!)!)
            if ok != accepted.contains(n) { mismatches.append(n) }
        }
        #expect(mismatches.isEmpty, "vectors \(mismatches)")
    }

    @Test func signingMatchesRFC8032TestVector1() {
        // RFC 8032 §7.1 TEST 1: the empty message.
        let seed = Hex.decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")!
        let key = Ed25519SigningKey(seed: seed)!
        #expect(Hex.encode(key.publicKey) == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        #expect(Hex.encode(key.sign([])) == "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
    }

    @Test func wrongLengthsAreInvalidNotCrashes() {
        #expect(!Ed25519.isValidSignature([1, 2, 3], of: [], publicKey: [UInt8](repeating: 0, count: 32)))
        #expect(!Ed25519.isValidSignature([UInt8](repeating: 0, count: 64), of: [], publicKey: [1]))
        #expect(Ed25519SigningKey(seed: [1, 2]) == nil)
    }
}
