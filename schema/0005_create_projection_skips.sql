-- Entries a read model could not apply. A model never stops on one entry: the entry is recorded here
-- (which model, which entry, why) in the same transaction that moves the model past it, and shown by
-- `evidence-ledger projections status` and /metrics. Like the models, this is not evidence.
CREATE TABLE projection_skips (
    name text NOT NULL,
    idx bigint NOT NULL CHECK (idx >= 0),
    reason text NOT NULL,
    skipped_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, idx)
);

-- An entry body as jsonb, or NULL when jsonb cannot hold it (a NUL character or an unpaired surrogate,
-- both valid in canonical JSON text). Only called for bodies holding a \u escape, which canonical JSON
-- writes for control characters and unpaired surrogates alone.
CREATE FUNCTION ledger_body_jsonb(body text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
    RETURN body::jsonb;
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;
END;
$$;

REVOKE ALL ON projection_skips FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON projection_skips TO ledger_app;
