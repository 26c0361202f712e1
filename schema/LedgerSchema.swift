// The SQL migrations in this folder, compiled into the binary (SwiftPM `.embedInCode`, which names
// `0001_x.sql` `_001_x_sql`) so that a
// deployed `evidence-ledger` carries its schema. Add each new file here and in Package.swift; a test
// checks that this list and the folder agree.

/// The numbered, forward-only migrations, in order.
public enum LedgerSchema {
    /// `(name, sql)` for every migration, in the order they apply.
    public static let migrations: [(name: String, sql: [UInt8])] = [
        ("0001_create_ledger", PackageResources._001_create_ledger_sql),
        ("0002_create_accounts", PackageResources._002_create_accounts_sql),
        ("0003_create_tree", PackageResources._003_create_tree_sql),
        ("0004_create_projections", PackageResources._004_create_projections_sql),
        ("0005_create_projection_skips", PackageResources._005_create_projection_skips_sql),
        ("0006_create_ledger_expect", PackageResources._006_create_ledger_expect_sql),
        ("0007_create_witnessing", PackageResources._007_create_witnessing_sql),
        ("0008_create_lifecycle", PackageResources._008_create_lifecycle_sql),
        ("0009_partition_payloads", PackageResources._009_partition_payloads_sql),
        ("0010_retention_policies", PackageResources._010_retention_policies_sql),
        ("0011_retention_scopes", PackageResources._011_retention_scopes_sql),
        ("0012_data_subjects", PackageResources._012_data_subjects_sql),
    ]
}
