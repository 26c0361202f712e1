-- Record lifecycle (active, archived, hidden, deleted), erasure and legal holds. The certificates read
-- model gains each record's lifecycle state, whether its payload was purged and its pending deletion
-- request; no such event existed before this migration, so the defaults are every row's true state.
ALTER TABLE proj_certificate_records
    ADD COLUMN lifecycle text NOT NULL DEFAULT 'active',
    ADD COLUMN purged boolean NOT NULL DEFAULT false,
    ADD COLUMN deletion_requested_idx bigint;
CREATE INDEX proj_certificate_records_deletion ON proj_certificate_records (deletion_requested_idx)
    WHERE deletion_requested_idx IS NOT NULL;

-- Holds and purges found by type without a scan of the log (the worker folds every hold; the audit
-- reads every purge).
CREATE INDEX ledger_entries_holds ON ledger_entries (idx) WHERE type IN ('legal_hold.applied', 'legal_hold.released');
CREATE INDEX ledger_entries_purges ON ledger_entries (idx) WHERE type = 'payload.purged';
