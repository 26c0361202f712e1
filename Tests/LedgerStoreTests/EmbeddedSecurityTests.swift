import Foundation
import LedgerProcesses
import LedgerStore
import Testing

@Suite struct EmbeddedSecurityTests {
    /// The embedded cluster is reachable only by its owner: a 0700 socket directory with peer
    /// authentication, and TCP only with the generated password (no `trust` anywhere).
    @Test func theEmbeddedClusterUsesPeerOnItsSocketAndAPasswordOnTCP() throws {
        let dir = "/tmp/el-sec-\(UUID().uuidString.prefix(8))"
        let port = 30000 + Int.random(in: 0..<20000)
        let embedded = EmbeddedPostgres(directory: dir, port: port, listenOnLoopback: true, databaseName: "sec")
        defer {
            try? embedded.stop()
            try? FileManager.default.removeItem(atPath: dir)
        }
        try embedded.start()
        let hba = try String(contentsOfFile: "\(dir)/postgres/data/pg_hba.conf", encoding: .utf8)
        #expect(!hba.contains("trust") && hba.contains("peer map=ledger") && hba.contains("scram-sha-256"))
        let socketMode = (try FileManager.default.attributesOfItem(atPath: "\(dir)/postgres/run")[.posixPermissions] as? Int) ?? -1
        #expect(socketMode == 0o700)
        let passMode = (try FileManager.default.attributesOfItem(atPath: embedded.passwordFile.path)[.posixPermissions] as? Int) ?? -1
        #expect(passMode == 0o600)

        // The socket works for us (peer), TCP without the password does not, with it it does.
        let c = try PostgresConnection(conninfo: embedded.conninfo(), statementTimeoutMilliseconds: 5000, role: nil)
        #expect(try c.query("SELECT 1").rows.count == 1)
        c.close()
        let tcp = "host=127.0.0.1 port=\(port) dbname=sec user=postgres"
        #expect(throws: LedgerStoreError.self) { _ = try PostgresConnection(conninfo: tcp + " passfile=/dev/null", statementTimeoutMilliseconds: 5000, role: nil) }
        let withPassword = try PostgresConnection(conninfo: tcp + " passfile=\(embedded.passwordFile.path)", statementTimeoutMilliseconds: 5000, role: nil)
        #expect(try withPassword.query("SELECT 1").rows.count == 1)
        withPassword.close()
        // Starting again (already running) keeps the same password and reloads the rules.
        try embedded.start()
        let again = try PostgresConnection(conninfo: tcp + " passfile=\(embedded.passwordFile.path)", statementTimeoutMilliseconds: 5000, role: nil)
        again.close()
    }
}
