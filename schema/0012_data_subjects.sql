-- Data subjects (issue 15, part 3): the keyed digests a cer.attested body names (`dataSubjects`), per account,
-- so that one deletion request reaches every record of a person. Part of the certificates read model (rebuilt
-- from the log with it).
CREATE TABLE proj_data_subjects (
    account text NOT NULL,
    digest text NOT NULL,
    certificate_hash text NOT NULL,
    idx bigint NOT NULL,
    PRIMARY KEY (account, digest, certificate_hash)
);
REVOKE ALL ON proj_data_subjects FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON proj_data_subjects TO ledger_app;
