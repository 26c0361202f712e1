-- Witness cosignatures of the node's checkpoints (c2sp.org/tlog-cosignature), one line per witness key
-- and checkpoint, append-only like the checkpoints themselves. A cosignature is signed by its witness,
-- so a forged row fails verification; the trigger keeps an operator from quietly removing evidence.
CREATE TABLE ledger_cosignatures (
    tree_size bigint NOT NULL REFERENCES ledger_checkpoints (tree_size),
    witness text NOT NULL,
    key_id bytea NOT NULL CHECK (length(key_id) = 4),
    line text NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (tree_size, witness, key_id)
);
CREATE TRIGGER ledger_cosignatures_no_change BEFORE UPDATE OR DELETE ON ledger_cosignatures
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_cosignatures_no_truncate BEFORE TRUNCATE ON ledger_cosignatures
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
REVOKE ALL ON ledger_cosignatures FROM PUBLIC;
GRANT SELECT, INSERT ON ledger_cosignatures TO ledger_app;

-- Records attested while the timestamp authorities were away, waiting for their token (a work queue,
-- not evidence: the token, once it comes, is a cer.timestamped entry). Survives restarts.
CREATE TABLE ledger_timestamp_queue (
    subject text PRIMARY KEY,
    account text NOT NULL,
    queued_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON ledger_timestamp_queue FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON ledger_timestamp_queue TO ledger_app;

-- A witness's state (`evidence-ledger witness serve`): per log origin, the latest checkpoint it
-- cosigned. Check-and-update happens under the row's lock, so concurrent submissions cannot roll it back.
CREATE TABLE witness_checkpoints (
    origin text PRIMARY KEY,
    tree_size bigint NOT NULL CHECK (tree_size >= 0),
    root_hash bytea CHECK (root_hash IS NULL OR length(root_hash) = 32),
    note text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON witness_checkpoints FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON witness_checkpoints TO ledger_app;

-- Evidence entries (checkpoint timestamps, anchors) found by type without a scan of the log.
CREATE INDEX ledger_entries_evidence ON ledger_entries (idx) WHERE type IN ('checkpoint.timestamped', 'anchor.recorded');
