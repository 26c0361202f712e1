import CERKit
import Foundation
import LedgerTesting
import Testing
@testable import LedgerCore

/// RFC 6962 trees and proofs against transparency-dev/merkle's vectors (shared/vectors/merkle/SOURCES.md).
@Suite struct MerkleVectorTests {
    static var root: URL { TestLocations.shared("vectors/merkle") }

    static func json(_ path: String) throws -> JSONValue { try JSONParser.parse(Array(try Data(contentsOf: root.appendingPathComponent(path)))) }
    static func b64(_ v: JSONValue?) -> [UInt8] { v?.stringValue.flatMap(Base64.decode) ?? [] }
    static func proof(_ v: JSONValue?) -> [[UInt8]] { (v?.arrayValue ?? []).map { Base64.decode($0.stringValue ?? "") ?? [] } }

    /// A JSON number as Int; values beyond Int (such as 2^64 − 1) become Int.max so verification refuses them.
    static func int(_ v: JSONValue?) -> Int {
        guard let d = v?.numberValue else { return -1 }
        return d >= 9.2e18 ? Int.max : (d <= -9.2e18 ? Int.min : Int(d))
    }

    static func files(_ family: String) throws -> [String] {
        let dir = root.appendingPathComponent(family)
        return try FileManager.default.subpathsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".json") }.sorted().map { "\(family)/\($0)" }
    }

    static let reference: (leaves: [[UInt8]], roots: [[UInt8]], nodes: [[[UInt8]]]) = {
        let doc = try! json("reference-tree.json")
        let leaves = doc["leafInputs"]!.arrayValue!.map { Hex.decode($0.stringValue!)! }.map(Merkle.leafHash)
        let roots = doc["rootHashes"]!.arrayValue!.map { Hex.decode($0.stringValue!)! }
        let nodes = doc["nodeHashes"]!.arrayValue!.map { level in level.arrayValue!.map { Hex.decode($0.stringValue!)! } }
        return (leaves, roots, nodes)
    }()

    @Test func referenceTreeLeavesAndRoots() throws {
        let r = Self.reference
        #expect(r.leaves == r.nodes[0])
        for n in 0...8 { #expect(Merkle.root(Array(r.leaves.prefix(n))) == r.roots[n], "root of \(n)") }
        let vectors = try Self.json("reference-tree.json")["hasherVectors"]!.arrayValue!
        #expect(vectors.count == 4)
        for v in vectors {
            let got: [UInt8]
            switch v["op"]!.stringValue! {
            case "emptyRoot": got = Merkle.root([])
            case "hashLeaf": got = Merkle.leafHash(v["inputAscii"].map { Array($0.stringValue!.utf8) } ?? Hex.decode(v["inputHex"]!.stringValue!)!)
            default: got = Merkle.nodeHash(Array(v["leftAscii"]!.stringValue!.utf8), Array(v["rightAscii"]!.stringValue!.utf8))
            }
            #expect(Hex.encode(got) == v["want"]?.stringValue, "\(v["desc"]!.stringValue!)")
        }
    }

    @Test func everyInclusionVectorBehavesAsLabelled() throws {
        let files = try Self.files("inclusion")
        #expect(files.count == 98)
        var valid = 0
        for f in files {
            let v = try Self.json(f)
            let ok = Merkle.verifyInclusion(
                index: Self.int(v["leafIdx"]), size: Self.int(v["treeSize"]), leafHash: Self.b64(v["leafHash"]),
                proof: Self.proof(v["proof"]), root: Self.b64(v["root"]))
            #expect(ok == (v["wantErr"] == false), "\(f)")
            if ok { valid += 1 }
        }
        #expect(valid == 6)
    }

    @Test func everyConsistencyVectorBehavesAsLabelled() throws {
        let files = try Self.files("consistency")
        #expect(files.count == 98)
        var valid = 0
        for f in files {
            let v = try Self.json(f)
            let ok = Merkle.verifyConsistency(
                size1: Self.int(v["size1"]), size2: Self.int(v["size2"]), proof: Self.proof(v["proof"]),
                root1: Self.b64(v["root1"]), root2: Self.b64(v["root2"]))
            #expect(ok == (v["wantErr"] == false), "\(f)")
            if ok { valid += 1 }
        }
        #expect(valid == 6)
    }

    @Test func generatedProofsEqualTheVectorsHappyPaths() throws {
        let leaves = Self.reference.leaves
        for dir in ["0", "1", "2", "3", "4"] {
            let inc = try Self.json("inclusion/\(dir)/happy-path.json")
            let size = Int(inc["treeSize"]!.numberValue!)
            #expect(Merkle.inclusionProof(index: Int(inc["leafIdx"]!.numberValue!), leafHashes: Array(leaves.prefix(size))) == Self.proof(inc["proof"]))
            let con = try Self.json("consistency/\(dir)/happy-path.json")
            let size2 = Int(con["size2"]!.numberValue!)
            #expect(Merkle.consistencyProof(oldSize: Int(con["size1"]!.numberValue!), leafHashes: Array(leaves.prefix(size2))) == Self.proof(con["proof"]))
        }
    }

    @Test func proofsOfRandomTreesVerifyAndAlterationsFail() {
        var seed: UInt64 = 0x5EED
        func next() -> UInt64 { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return seed >> 11 }
        let leaves = (0..<600).map { i in Merkle.leafHash(Array("leaf \(i)".utf8)) }
        for _ in 0..<300 {
            let size = Int(next() % 600) + 1
            let tree = Array(leaves.prefix(size))
            let rootHash = Merkle.root(tree)
            let index = Int(next() % UInt64(size))
            let proof = Merkle.inclusionProof(index: index, leafHashes: tree)!
            #expect(Merkle.verifyInclusion(index: index, size: size, leafHash: tree[index], proof: proof, root: rootHash))
            if size > 1 {
                #expect(!Merkle.verifyInclusion(index: (index + 1) % size, size: size, leafHash: tree[index], proof: proof, root: rootHash))
            }
            if !proof.isEmpty {
                var bad = proof
                bad[Int(next() % UInt64(bad.count))][0] ^= 1
                #expect(!Merkle.verifyInclusion(index: index, size: size, leafHash: tree[index], proof: bad, root: rootHash))
            }
            let old = Int(next() % UInt64(size)) + 1
            let c = Merkle.consistencyProof(oldSize: old, leafHashes: tree)!
            let oldRoot = Merkle.root(Array(tree.prefix(old)))
            #expect(Merkle.verifyConsistency(size1: old, size2: size, proof: c, root1: oldRoot, root2: rootHash), "\(old) → \(size)")
            if !c.isEmpty {
                var bad = c
                bad[Int(next() % UInt64(bad.count))][31] ^= 0x80
                #expect(!Merkle.verifyConsistency(size1: old, size2: size, proof: bad, root1: oldRoot, root2: rootHash))
                #expect(!Merkle.verifyConsistency(size1: old, size2: size, proof: c, root1: rootHash, root2: oldRoot) || old == size)
            }
        }
    }
}
