/// The checks of one subject's chain (pure): its entries, given in subject order, must have dense
/// subject positions from 0, each link must be the previous entry's leaf, each leaf must match its entry.
public enum SubjectChain {
    public static func problems(subject: String, _ entries: [LedgerEntry]) -> [LedgerProblem] {
        var problems: [LedgerProblem] = []
        var previous: LedgerEntry? = nil
        for e in entries {
            let expected = previous.map { $0.subjectIndex + 1 } ?? 0
            if e.subjectIndex != expected {
                let missing = e.subjectIndex - expected
                problems.append(LedgerProblem(index: e.index, what: "\(missing) entr\(missing == 1 ? "y" : "ies") of \(subject) missing before this one"))
            }
            if e.prevSubjectLeaf != previous?.leafHash { problems.append(LedgerProblem(index: e.index, what: "chain link does not match the previous entry")) }
            if !e.isLeafHashConsistent { problems.append(LedgerProblem(index: e.index, what: "leaf hash does not match the entry")) }
            previous = e
        }
        return problems
    }
}
