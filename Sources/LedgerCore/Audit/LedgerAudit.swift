import CERKit

/// The first problem an audit of the log found: which entry, and what was expected and found.
public struct LedgerProblem: Sendable, Equatable, CustomStringConvertible {
    public var index: Int64?
    public var what: String
    public var expected: String?
    public var found: String?

    public init(index: Int64?, what: String, expected: String? = nil, found: String? = nil) {
        self.index = index
        self.what = what
        self.expected = expected
        self.found = found
    }

    public var description: String {
        var s = index.map { "entry \($0): " } ?? ""
        s += what
        if let expected { s += "; expected \(expected)" }
        if let found { s += ", found \(found)" }
        return s
    }
}

/// Re-checks entries streamed in index order (pure; the store feeds it rows).
public struct LedgerAudit: Sendable {
    public private(set) var nextIndex: Int64 = 0
    private var subjects: [String: SubjectHead] = [:]
    public private(set) var problems: [LedgerProblem] = []
    public private(set) var subjectCount = 0

    public init() {}

    /// Checks one entry: index density, leaf hash, subject position and chain link.
    public mutating func check(_ entry: LedgerEntry) {
        if entry.index != nextIndex {
            problems.append(LedgerProblem(index: entry.index, what: "index is not dense", expected: String(nextIndex), found: String(entry.index)))
        }
        nextIndex = entry.index + 1
        if let bytes = try? entry.canonicalBytes() {
            let leaf = Merkle.leafHash(bytes)
            if leaf != entry.leafHash {
                problems.append(LedgerProblem(
                    index: entry.index, what: "leaf hash does not match the entry's contents", expected: Hex.encode(leaf),
                    found: Hex.encode(entry.leafHash)))
            }
        } else {
            problems.append(LedgerProblem(index: entry.index, what: "entry body has no canonical form"))
        }
        let head = subjects[entry.subject] ?? SubjectHead(count: 0, lastLeaf: nil)
        if head.count == 0 { subjectCount += 1 }
        if entry.subjectIndex != head.count {
            problems.append(LedgerProblem(
                index: entry.index, what: "position in subject \(entry.subject) is not dense", expected: String(head.count),
                found: String(entry.subjectIndex)))
        }
        if entry.prevSubjectLeaf != head.lastLeaf {
            problems.append(LedgerProblem(
                index: entry.index, what: "chain link of subject \(entry.subject) does not name the previous entry's leaf",
                expected: head.lastLeaf.map(Hex.encode) ?? "none", found: entry.prevSubjectLeaf.map(Hex.encode) ?? "none"))
        }
        subjects[entry.subject] = SubjectHead(count: head.count + 1, lastLeaf: entry.leafHash)
    }

    /// Checks that the head row agrees with the entries seen.
    public mutating func finish(headSize: Int64) {
        if headSize != nextIndex {
            problems.append(LedgerProblem(index: nil, what: "the head row's size does not match the entries", expected: String(nextIndex), found: String(headSize)))
        }
    }
}
