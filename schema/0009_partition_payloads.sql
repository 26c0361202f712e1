-- Payloads partitioned by month of storage, so that erasure reaches the bytes on disk: PostgreSQL keeps a
-- deleted row's bytes in the table (and TOAST) files until the pages are rewritten, and a rewrite
-- (VACUUM FULL) locks the table it rewrites. Appends only ever insert into the current month's partition;
-- a closed month's partition that held erased payloads is rewritten by the maintenance without blocking
-- them (docs/operations.md, "Retention and erasure").
ALTER TABLE ledger_payloads RENAME TO ledger_payloads_unpartitioned;
ALTER TABLE ledger_payloads_unpartitioned RENAME CONSTRAINT ledger_payloads_pkey TO ledger_payloads_unpartitioned_pkey;

CREATE TABLE ledger_payloads (
    digest bytea NOT NULL CHECK (length(digest) = 32),
    salt bytea NOT NULL CHECK (length(salt) = 16),
    content bytea NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (digest, stored_at)
) PARTITION BY RANGE (stored_at);
-- Rows of a month whose partition does not exist yet (the maintenance creates them a month ahead).
CREATE TABLE ledger_payloads_default PARTITION OF ledger_payloads DEFAULT;
ALTER TABLE ledger_payloads_default SET (toast_tuple_target = 8160);

-- Creates the partition of the month that contains `day` unless it exists; returns its name. Run by the
-- owner (migrations, maintenance), never by the application role.
CREATE FUNCTION ledger_payload_partition(day date) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    first date := date_trunc('month', day::timestamp)::date;
    name text := format('ledger_payloads_y%sm%s', to_char(first, 'YYYY'), to_char(first, 'MM'));
BEGIN
    IF to_regclass(name) IS NULL THEN
        -- Months in UTC, whatever the session's time zone (the maintenance decides in UTC which have ended).
        EXECUTE format('CREATE TABLE %I PARTITION OF ledger_payloads FOR VALUES FROM (%L) TO (%L)',
            name, first::timestamp AT TIME ZONE 'UTC', (first + interval '1 month')::timestamp AT TIME ZONE 'UTC');
        EXECUTE format('ALTER TABLE %I SET (toast_tuple_target = 8160)', name);
    END IF;
    RETURN name;
END;
$$;
REVOKE ALL ON FUNCTION ledger_payload_partition(date) FROM PUBLIC;

SELECT ledger_payload_partition((now() AT TIME ZONE 'UTC')::date);
SELECT ledger_payload_partition((now() AT TIME ZONE 'UTC' + interval '1 month')::date);
-- Older rows: a partition for each month they were stored in, then the rows.
SELECT ledger_payload_partition(m::date)
FROM (SELECT DISTINCT date_trunc('month', stored_at AT TIME ZONE 'UTC') AS m FROM ledger_payloads_unpartitioned) months;
INSERT INTO ledger_payloads (digest, salt, content, stored_at) SELECT digest, salt, content, stored_at FROM ledger_payloads_unpartitioned;
DROP TABLE ledger_payloads_unpartitioned;

REVOKE ALL ON ledger_payloads FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON ledger_payloads TO ledger_app;

-- Partitions that held an erased payload and must be rewritten for its bytes to leave the files.
CREATE TABLE ledger_payload_rewrites (
    partition text PRIMARY KEY,
    requested_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON ledger_payload_rewrites FROM PUBLIC;
-- An erasure refreshes its partition's request time, so one that lands during a rewrite is not lost.
GRANT SELECT, INSERT, UPDATE ON ledger_payload_rewrites TO ledger_app;
