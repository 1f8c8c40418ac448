import ArgumentParser
import Tessera

/// `tessera purge`: old expired and revoked tokens deleted, audited.
struct Purge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete tokens that expired, or were revoked, longer ago than --expired-before. Audit rows stay."
    )

    @Option(name: .customLong("expired-before"), help: "How long ago: a number with d, h, m or s, such as 30d.")
    var age: String

    func validate() throws {
        guard Self.seconds(age) != nil else { throw ValidationError("--expired-before must look like 30d, 12h, 90m or 3600s (at most 100 years)") }
    }

    /// Seconds in `30d`, `12h`, `90m` or `3600s`, up to 100 years.
    static func seconds(_ text: String) -> Int? {
        guard let unit = text.last, let number = Int(text.dropLast()), number >= 0,
            let multiplier = ["d": 86_400, "h": 3_600, "m": 60, "s": 1][String(unit)]
        else { return nil }
        let (seconds, overflow) = number.multipliedReportingOverflow(by: multiplier)
        return overflow || seconds > 100 * 365 * 86_400 ? nil : seconds
    }

    func run() async throws {
        let seconds = Self.seconds(age)!
        let deleted = try await withRepository { repository, logger in
            try await repository.purge(olderThan: seconds, by: commandLineActor, logger: logger)
        }
        print("deleted \(deleted) token\(deleted == 1 ? "" : "s") that expired or were revoked more than \(age) ago")
    }
}
