-- The verifiable log: the RFC 6962 tree over the entries' leaf hashes, stored as the root of every
-- complete perfect subtree (level >= 1; level 0 is ledger_entries.leaf_hash), and the signed checkpoints.
-- Node (level, idx) covers leaves [idx * 2^level, (idx + 1) * 2^level). The sequencer inserts the nodes an
-- append batch completes in the batch's own transaction, so the tree always has exactly the head's size.

CREATE TABLE ledger_tree_nodes (
    level smallint NOT NULL CHECK (level BETWEEN 1 AND 62),
    idx bigint NOT NULL CHECK (idx >= 0),
    hash bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- Signed checkpoints (c2sp.org/tlog-checkpoint bodies in c2sp.org/signed-note form), one per tree size.
CREATE TABLE ledger_checkpoints (
    tree_size bigint PRIMARY KEY CHECK (tree_size >= 0),
    root_hash bytea NOT NULL CHECK (length(root_hash) = 32),
    note text NOT NULL,
    signed_at timestamptz NOT NULL
);

CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP USING ERRCODE = 'P0001';
END;
$$;
CREATE TRIGGER ledger_tree_nodes_no_change BEFORE UPDATE OR DELETE ON ledger_tree_nodes
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_tree_nodes_no_truncate BEFORE TRUNCATE ON ledger_tree_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_checkpoints_no_change BEFORE UPDATE OR DELETE ON ledger_checkpoints
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_checkpoints_no_truncate BEFORE TRUNCATE ON ledger_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

-- A log that already has entries gets its tree now, level by level (the migration holds the head lock).
SELECT size FROM ledger_head WHERE id = 1 FOR UPDATE;
INSERT INTO ledger_tree_nodes (level, idx, hash)
SELECT 1, a.idx / 2, sha256('\x01'::bytea || a.leaf_hash || b.leaf_hash)
FROM ledger_entries a JOIN ledger_entries b ON b.idx = a.idx + 1
WHERE a.idx % 2 = 0;
DO $$
DECLARE
    lvl smallint := 1;
    added bigint;
BEGIN
    LOOP
        INSERT INTO ledger_tree_nodes (level, idx, hash)
        SELECT lvl + 1, a.idx / 2, sha256('\x01'::bytea || a.hash || b.hash)
        FROM ledger_tree_nodes a JOIN ledger_tree_nodes b ON b.level = lvl AND b.idx = a.idx + 1
        WHERE a.level = lvl AND a.idx % 2 = 0;
        GET DIAGNOSTICS added = ROW_COUNT;
        EXIT WHEN added = 0;
        lvl := lvl + 1;
    END LOOP;
END;
$$;

REVOKE ALL ON ledger_tree_nodes, ledger_checkpoints FROM PUBLIC;
GRANT SELECT, INSERT ON ledger_tree_nodes, ledger_checkpoints TO ledger_app;
