import ArgumentParser
import CERKit
import LedgerServer
import LedgerStore

/// Runs `body` with the account store (after migrating), with `withMigratedPool`'s exit codes.
func withAccountStore<T>(_ database: DatabaseOptions, _ body: (AccountStore) async throws -> T) async throws -> T {
    try await withMigratedPool(database) { pool in try await body(AccountStore(pool: pool)) }
}

/// `evidence-ledger accounts …`.
struct AccountsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accounts", abstract: "Create, list and change accounts (plans and monthly limits).",
        subcommands: [Create.self, List.self, Set.self])

    static func describe(_ a: Account) -> String {
        "\(a.id)  plan \(a.plan)  limit \(a.monthlyLimit)/month  used \(a.usedThisMonth)  created \(a.createdAt)"
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an account.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "Account id (letters, digits, '.', '_', '-').") var id: String
        @Option(help: "Plan name.") var plan: String = "free"
        @Option(name: .customLong("monthly-limit"), help: "Billable requests per month.") var monthlyLimit: Int64 = 100

        func run() async throws {
            let account = try await withAccountStore(database) { try await $0.createAccount(id: id, plan: plan, monthlyLimit: monthlyLimit) }
            FileOutput.standardOutput("created \(AccountsCommand.describe(account))\n")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List accounts with this month's usage.")
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let accounts = try await withAccountStore(database) { try await $0.listAccounts() }
            if accounts.isEmpty { FileOutput.standardOutput("no accounts\n") }
            for a in accounts { FileOutput.standardOutput(AccountsCommand.describe(a) + "\n") }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set", abstract: "Change an account's plan or monthly limit.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "Account id.") var id: String
        @Option(help: "New plan name.") var plan: String?
        @Option(name: .customLong("monthly-limit"), help: "New monthly limit.") var monthlyLimit: Int64?

        func validate() throws {
            if plan == nil && monthlyLimit == nil { throw ValidationError("give --plan, --monthly-limit or both") }
        }

        func run() async throws {
            let account = try await withAccountStore(database) { try await $0.updateAccount(id: id, plan: plan, monthlyLimit: monthlyLimit) }
            FileOutput.standardOutput("updated \(AccountsCommand.describe(account))\n")
        }
    }
}

/// `evidence-ledger api-keys …`.
struct APIKeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api-keys", abstract: "Create, list, revoke and rotate API keys (a key is shown once).",
        subcommands: [Create.self, List.self, Revoke.self, Rotate.self])

    static func describe(_ k: APIKeyRecord) -> String {
        "\(k.id)  \(k.accountId)  \(k.prefix)…  \(k.status)  \(k.label.isEmpty ? "-" : k.label)  created \(k.createdAt)"
            + (k.revokedAt.map { "  revoked \($0)" } ?? "")
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API key for an account and print it once.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "Account id.") var account: String
        @Option(help: "A label to recognise the key by.") var label: String = ""

        func run() async throws {
            let (raw, record) = try await withAccountStore(database) { try await $0.createAPIKey(accountId: account, label: label) }
            FileOutput.standardError("created API key \(record.id) for \(record.accountId); it is shown only now:")
            FileOutput.standardOutput(raw + "\n")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List API keys (never the keys themselves).")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Only this account's keys.") var account: String?

        func run() async throws {
            let keys = try await withAccountStore(database) { try await $0.listAPIKeys(accountId: account) }
            if keys.isEmpty { FileOutput.standardOutput("no API keys\n") }
            for k in keys { FileOutput.standardOutput(APIKeysCommand.describe(k) + "\n") }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke an API key (effective on the next request).")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "API key id (from `api-keys list`).") var id: Int64

        func run() async throws {
            let record = try await withAccountStore(database) { try await $0.revokeAPIKey(id: id) }
            FileOutput.standardOutput("revoked \(APIKeysCommand.describe(record))\n")
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Replace an API key: revoke it and print a new one once.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "API key id.") var id: Int64

        func run() async throws {
            let (raw, record) = try await withAccountStore(database) { try await $0.rotateAPIKey(id: id) }
            FileOutput.standardError("API key \(id) revoked; new key \(record.id) is shown only now:")
            FileOutput.standardOutput(raw + "\n")
        }
    }
}
