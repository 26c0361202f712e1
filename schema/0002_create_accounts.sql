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

CREATE TABLE usage_events (
    id bigserial PRIMARY KEY,
    ts timestamptz NOT NULL,
    account_id text,
    api_key_id bigint,
    endpoint text NOT NULL,
    status_code integer NOT NULL,
    duration_ms integer NOT NULL,
    request_id text,
    error text
);
CREATE INDEX usage_events_account_ts ON usage_events (account_id, ts);

-- Key events and other typed lookups read the log by type.
CREATE INDEX ledger_entries_type ON ledger_entries (type, idx);

REVOKE ALL ON accounts, api_keys, quota_usage, usage_events FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON accounts, api_keys, quota_usage TO ledger_app;
GRANT SELECT, INSERT ON usage_events TO ledger_app;
GRANT USAGE ON SEQUENCE api_keys_id_seq, usage_events_id_seq TO ledger_app;
