-- Retention policies (retention.policy_set entries) and review flags, found by type without a scan.
CREATE INDEX ledger_entries_retention ON ledger_entries (idx) WHERE type = 'retention.policy_set';
-- Records by account and age for the expiry pass (the certificates read model, joined to each record's
-- first entry for its time).
CREATE INDEX proj_certificate_records_account ON proj_certificate_records (account, first_idx);
