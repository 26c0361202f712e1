-- Read models (projections) rebuilt from the log. Nothing here is evidence: every row can be dropped
-- and replayed from ledger_entries (`evidence-ledger projections rebuild`). Each model has a checkpoint
-- row, updated in the same transaction as its writes, holding the next log index it will apply.

CREATE TABLE projection_checkpoints (
    name text PRIMARY KEY,
    position bigint NOT NULL CHECK (position >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO projection_checkpoints (name, position) VALUES ('certificates', 0), ('runs', 0), ('projects', 0);

-- certificates: each account's record of a certificate hash (owner, visibility, lifecycle state, the
-- entry holding its latest receipt), and links from events on other subjects that name it.
CREATE TABLE proj_certificate_records (
    certificate_hash text NOT NULL,
    account text NOT NULL,
    record_idx bigint NOT NULL,          -- the entry of the record (its receipt), bundle-bearing preferred
    has_bundle boolean NOT NULL,
    visibility text NOT NULL,
    state text NOT NULL,                 -- attested | stamped | registered
    bundle_type text,
    execution_id text,
    first_idx bigint NOT NULL,
    last_idx bigint NOT NULL,
    events bigint NOT NULL,
    PRIMARY KEY (certificate_hash, account)
);
CREATE TABLE proj_certificate_links (
    certificate_hash text NOT NULL,
    idx bigint NOT NULL,
    kind text NOT NULL,                  -- e.g. project
    ref text NOT NULL,                   -- e.g. the projectHash
    PRIMARY KEY (certificate_hash, idx)
);

-- runs: the steps recorded under each account's runId, in any arrival order.
CREATE TABLE proj_run_steps (
    account text NOT NULL,
    run_id text NOT NULL,
    certificate_hash text NOT NULL,
    step_index bigint,
    prev_step_hash text,
    workflow_id text,
    idx bigint NOT NULL,
    PRIMARY KEY (account, run_id, certificate_hash)
);

-- projects: registered project bundles.
CREATE TABLE proj_projects (
    project_hash text PRIMARY KEY,
    project_bundle_id text NOT NULL,
    account text,
    registration_idx bigint NOT NULL,
    registered_at text NOT NULL,
    step_count integer NOT NULL
);

REVOKE ALL ON projection_checkpoints, proj_certificate_records, proj_certificate_links, proj_run_steps, proj_projects FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON projection_checkpoints, proj_certificate_records, proj_certificate_links, proj_run_steps,
    proj_projects TO ledger_app;
GRANT TRUNCATE ON proj_certificate_records, proj_certificate_links, proj_run_steps, proj_projects TO ledger_app;
