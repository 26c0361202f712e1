import CERKit
import Foundation
import HTTPTypes
import Hummingbird
import LedgerCore
import LedgerStore
import Synchronization

/// Charging billable operations against the account's monthly quota, and recording usage events.
struct Billing: Sendable {
    let configuration: ServerConfiguration
    let accounts: AccountStore
    let usage: UsageRecorder
    let quotaGate = QuotaGate()
    let clock: @Sendable () -> Int64

    /// Runs a billable operation. The operation's append carries a `Charge`, which the sequencer admits
    /// in the append's own transaction only while the account has quota left and the key is still
    /// active (decision 0007): never more than the limit, nothing charged for a replay or a failure.
    /// An account found out of quota is answered 429 without any work for the next few seconds.
    func billable(
        _ request: Request, _ context: LedgerRequestContext, endpoint: String,
        _ operation: (Principal, Charge?) async throws -> (response: Response, meter: MeterReading?)
    ) async throws -> Response {
        let started = clock()
        let period = QuotaPeriod(milliseconds: started)
        let principal = try await context.auth.accountForCharge(now: started)
        func quotaExceeded(used: Int64, limit: Int64) -> LedgerServerError {
            LedgerServerError(
                .quotaExceeded, "Monthly certified run quota exceeded",
                extra: ["limit": .number(Double(limit)), "used": .number(Double(used)), "resetAt": .string(JSONString(period.resetAt))],
                headers: [("X-Quota-Limit", "\(limit)"), ("X-Quota-Used", "\(used)"), ("X-Quota-Remaining", "0")])
        }
        do {
            if configuration.enforceQuota, let exhausted = quotaGate.exhausted(principal.accountId, now: started) {
                throw quotaExceeded(used: exhausted.used, limit: exhausted.limit)
            }
            let charge = configuration.enforceQuota
                ? Charge(account: principal.accountId, credentialId: principal.apiKeyId, period: period.start) : nil
            var (response, meter) = try await operation(principal, charge)
            if let meter {
                response.headers[HTTPField.Name("X-Quota-Limit")!] = "\(meter.limit)"
                response.headers[HTTPField.Name("X-Quota-Used")!] = "\(meter.used)"
                response.headers[HTTPField.Name("X-Quota-Remaining")!] = "\(meter.remaining)"
            } else if !configuration.enforceQuota {
                response.headers[HTTPField.Name("X-Quota-Enforced")!] = "false"
            }
            recordUsage(principal, endpoint, status: Int(response.status.code), started: started, error: nil)
            return response
        } catch {
            var shown = LedgerServerError.from(error)
            switch error {
            case AppendRefusal.notAdmitted(.quotaExceeded(let used, let limit)):
                quotaGate.markExhausted(principal.accountId, used: used, limit: limit, now: started)
                shown = quotaExceeded(used: used, limit: limit)
            case AppendRefusal.notAdmitted(.credentialInactive), AppendRefusal.notAdmitted(.unknownAccount):
                accounts.forget(apiKeyId: principal.apiKeyId)
            default:
                break
            }
            recordUsage(principal, endpoint, status: Int(shown.status.code), started: started, error: shown.code.rawValue)
            throw shown
        }
    }

    func recordUsage(_ principal: Principal, _ endpoint: String, status: Int, started: Int64, error: String?) {
        usage.record(UsageEvent(
            at: started, accountId: principal.accountId, apiKeyId: principal.apiKeyId, endpoint: endpoint, status: status,
            durationMilliseconds: Int(clock() - started), error: error))
    }

}

/// Accounts recently refused for quota: answered 429 without work for a few seconds (a raised limit
/// takes effect after that).
final class QuotaGate: Sendable {
    static let hold: Int64 = 5_000
    private let exhaustedUntil = Mutex<[String: (until: Int64, used: Int64, limit: Int64)]>([:])

    func exhausted(_ account: String, now: Int64) -> (used: Int64, limit: Int64)? {
        exhaustedUntil.withLock { e in
            guard let hit = e[account] else { return nil }
            if hit.until <= now {
                e[account] = nil
                return nil
            }
            return (hit.used, hit.limit)
        }
    }

    func markExhausted(_ account: String, used: Int64, limit: Int64, now: Int64) {
        exhaustedUntil.withLock { $0[account] = (now + Self.hold, used, limit) }
    }
}
