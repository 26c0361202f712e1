import LedgerCore
public import LedgerStore

/// A read model rebuilt from the log. `apply` runs inside the runner's transaction, which also moves
/// the model's checkpoint, so a model is always exactly "the log up to its position".
public protocol Projection: Sendable {
    var name: String { get }
    /// The tables it owns (emptied by a rebuild).
    var tables: [SQLFragment] { get }
    /// The event types it reads; entries of other types only advance its checkpoint.
    var types: [String] { get }
    /// Applies events, in index order, on the open transaction.
    func apply(_ events: [ProjectionEvent], on c: PostgresConnection) throws
    /// Queries whose text output, concatenated, is a canonical dump of the model.
    var dumpQueries: [SQLQuery] { get }
}

/// Text arrays for `unnest`: an empty string stands for NULL (read back with NULLIF).
func column(_ values: [String?]) -> SQLValue { .textArray(values.map { $0 ?? "" }) }
