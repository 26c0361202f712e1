-- The append-only event log: one row per event, a head row holding the log's size, and payloads
-- kept apart so they can be deleted without touching an entry, its leaf hash or any proof.

CREATE TABLE ledger_head (
    id smallint PRIMARY KEY CHECK (id = 1),
    size bigint NOT NULL CHECK (size >= 0)
);
INSERT INTO ledger_head (id, size) VALUES (1, 0);

CREATE TABLE ledger_entries (
    idx bigint PRIMARY KEY CHECK (idx >= 0),
    subject text NOT NULL CHECK (length(subject) BETWEEN 1 AND 512),
    subject_index bigint NOT NULL CHECK (subject_index >= 0),
    type text NOT NULL CHECK (length(type) BETWEEN 1 AND 128),
    account text,
    recorded_at timestamptz NOT NULL,
    body text NOT NULL,                  -- canonical JSON (exact bytes, not jsonb: the leaf hash covers them)
    payload_digest bytea CHECK (payload_digest IS NULL OR length(payload_digest) = 32),
    prev_subject_leaf bytea CHECK (prev_subject_leaf IS NULL OR length(prev_subject_leaf) = 32),
    idempotency_key text,
    leaf_hash bytea NOT NULL CHECK (length(leaf_hash) = 32),
    CONSTRAINT ledger_entries_subject_position UNIQUE (subject, subject_index),
    CONSTRAINT ledger_entries_first_has_no_link CHECK ((subject_index = 0) = (prev_subject_leaf IS NULL))
);
CREATE UNIQUE INDEX ledger_entries_idempotency ON ledger_entries (subject, type, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX ledger_entries_account ON ledger_entries (account, idx) WHERE account IS NOT NULL;

CREATE TABLE ledger_payloads (
    digest bytea PRIMARY KEY CHECK (length(digest) = 32),
    salt bytea NOT NULL CHECK (length(salt) = 16),
    content bytea NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);

-- Append-only, enforced by the database: no UPDATE, DELETE or TRUNCATE on entries.
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger_entries is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'P0001';
END;
$$;
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- The head row may only grow.
CREATE FUNCTION ledger_head_only_grows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.size < OLD.size THEN
        RAISE EXCEPTION 'ledger_head.size may only grow (% -> %)', OLD.size, NEW.size USING ERRCODE = 'P0001';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER ledger_head_grows BEFORE UPDATE ON ledger_head
    FOR EACH ROW EXECUTE FUNCTION ledger_head_only_grows();
CREATE TRIGGER ledger_head_no_delete BEFORE DELETE OR TRUNCATE ON ledger_head
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- The application role: INSERT and SELECT on the log only.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app') THEN
        CREATE ROLE ledger_app NOLOGIN;
    END IF;
END;
$$;
REVOKE ALL ON ledger_entries, ledger_head, ledger_payloads FROM PUBLIC;
GRANT SELECT, INSERT ON ledger_entries TO ledger_app;
GRANT SELECT, UPDATE ON ledger_head TO ledger_app;
GRANT SELECT, INSERT, DELETE ON ledger_payloads TO ledger_app;
