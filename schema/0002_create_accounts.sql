-- Accounts, API keys, monthly quota counters and usage events: operational state beside the log.
-- They change (a key is revoked, a counter grows), so they are ordinary tables, not ledger entries.

CREATE TABLE accounts (
    id text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    plan text NOT NULL DEFAULT 'free' CHECK (length(plan) BETWEEN 1 AND 50),
    monthly_limit bigint NOT NULL CHECK (monthly_limit >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Only the SHA-256 of a key is stored; the key itself is shown once when it is made.
CREATE TABLE api_keys (
    id bigserial PRIMARY KEY,
    account_id text NOT NULL REFERENCES accounts (id),
    key_hash bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    key_prefix text NOT NULL,
    label text NOT NULL DEFAULT '' CHECK (length(label) <= 255),
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    replaced_by bigint REFERENCES api_keys (id),
    CHECK ((status = 'revoked') = (revoked_at IS NOT NULL))
);
CREATE INDEX api_keys_account ON api_keys (account_id);

-- One counter per account and month (UTC), incremented only while below the account's limit.
CREATE TABLE quota_usage (
    account_id text NOT NULL REFERENCES accounts (id),
    period date NOT NULL CHECK (extract(day FROM period) = 1),
    used bigint NOT NULL CHECK (used >= 0),
    PRIMARY KEY (account_id, period)
);

-- Usage, aggregated per minute: one row per (minute, account, key, endpoint, status, error) with a
-- count, so a busy node writes a few rows a second instead of one per request.
CREATE TABLE usage_minutes (
    minute timestamptz NOT NULL,
    account_id text NOT NULL,
    api_key_id bigint NOT NULL,
    endpoint text NOT NULL,
    status_code integer NOT NULL,
    error text NOT NULL DEFAULT '',
    requests bigint NOT NULL CHECK (requests > 0),
    duration_ms_total bigint NOT NULL CHECK (duration_ms_total >= 0),
    PRIMARY KEY (account_id, minute, api_key_id, endpoint, status_code, error)
);

-- Reads by account go through (account, type, idx); key events through a small partial index (their
-- queries repeat its predicate). Every index costs the sequencer on each append, so there are no others.
DROP INDEX ledger_entries_account;
CREATE INDEX ledger_entries_account_type ON ledger_entries (account, type, idx) WHERE account IS NOT NULL;
CREATE INDEX ledger_entries_key_events ON ledger_entries (idx) WHERE type LIKE 'key.%';

-- Entries and payloads of a few KiB stay in their row, uncompressed: no TOAST work on the append path.
ALTER TABLE ledger_entries SET (toast_tuple_target = 8160);
ALTER TABLE ledger_payloads SET (toast_tuple_target = 8160);

-- Unique claims made with appends (an account's executionId belongs to the first certificate attested
-- with it). Written by the sequencer under the head lock, in the append's transaction; append-only.
CREATE TABLE ledger_claims (
    scope text NOT NULL CHECK (length(scope) BETWEEN 1 AND 512),
    key text NOT NULL CHECK (length(key) BETWEEN 1 AND 1024),
    value text NOT NULL,
    entry_idx bigint NOT NULL,  -- no foreign key: TRUNCATE of the log must reach its refusing trigger
    PRIMARY KEY (scope, key)
);
CREATE TRIGGER ledger_claims_no_update BEFORE UPDATE OR DELETE ON ledger_claims
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_claims_no_truncate BEFORE TRUNCATE ON ledger_claims
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

REVOKE ALL ON accounts, api_keys, quota_usage, usage_minutes, ledger_claims FROM PUBLIC;
GRANT SELECT, INSERT ON ledger_claims TO ledger_app;
GRANT SELECT, INSERT, UPDATE ON accounts, api_keys, quota_usage TO ledger_app;
GRANT SELECT, INSERT, UPDATE ON usage_minutes TO ledger_app;
GRANT USAGE ON SEQUENCE api_keys_id_seq TO ledger_app;
