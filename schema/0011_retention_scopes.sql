-- Retention policies scoped to an application or an execution surface (issue 15, part 3):
-- the certificates read model keeps what a record's attestation names (cer.attested bodies carry `appId`
-- and `executionSurface` from this version on; earlier entries name neither, so these stay NULL for them
-- in the live model and in a rebuild alike).
ALTER TABLE proj_certificate_records ADD COLUMN app_id text, ADD COLUMN execution_surface text;
