/// Why an append was refused (not an operational fault): what the planner, the admission of its
/// charge or a claim decided. A batch's outcome for a refused request carries one.
public enum AppendRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    case versionConflict(subject: String, expected: Int64, actual: Int64)
    /// The request is malformed (why, in a sentence).
    case invalid(String)
    /// The request's charge was not admitted.
    case notAdmitted(AdmissionRefusal)
    /// The claimed key already belongs to another value.
    case claimConflict(scope: String, key: String, existingValue: String)
    /// Another member of the request's all-or-nothing group was refused.
    case refusedWithGroup

    public var description: String {
        switch self {
        case .versionConflict(let s, let e, let a): return "subject \(s) is at version \(a), not the expected \(e)"
        case .invalid(let why): return why
        case .notAdmitted(let refusal): return "not admitted: \(refusal)"
        case .claimConflict(let scope, let key, let existing): return "\(key) in \(scope) already belongs to \(existing)"
        case .refusedWithGroup: return "not appended: another append in the same group was refused"
        }
    }
}

/// The result of one append.
public enum AppendResult: Sendable, Equatable {
    /// Written now, at this entry.
    case appended(LedgerEntry)
    /// An idempotent retry: the entry written earlier under the same key.
    case existing(LedgerEntry)

    public var entry: LedgerEntry {
        switch self {
        case .appended(let e), .existing(let e): return e
        }
    }

    /// A group's result from its members' outcomes: all its entries, or its first refusal (preferring
    /// the member that caused it over the members refused with it).
    public static func group(_ outcomes: ArraySlice<AppendOutcome>) -> Result<[AppendResult], AppendRefusal> {
        var results: [AppendResult] = []
        var cause: AppendRefusal?
        var refusedWithGroup = false
        for outcome in outcomes {
            switch outcome {
            case .appended(let e): results.append(.appended(e))
            case .existing(let e): results.append(.existing(e))
            case .versionConflict(let s, let e, let a): cause = cause ?? .versionConflict(subject: s, expected: e, actual: a)
            case .rejected(.refusedWithGroup): refusedWithGroup = true
            case .rejected(let refusal): cause = cause ?? refusal
            }
        }
        if let cause { return .failure(cause) }
        if refusedWithGroup { return .failure(.refusedWithGroup) }
        return .success(results)
    }
}
