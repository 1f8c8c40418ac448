import ArgumentParser
import Foundation
import Tessera

/// `tessera tokens`: listing and revoking straight in the database.
struct TokensCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens",
        abstract: "Break-glass work on the token database directly (needs DATABASE_URL, not an API key).",
        subcommands: [List.self, Revoke.self]
    )

    /// `tessera tokens list`: a user's tokens, newest first, as a table.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a user's tokens, newest first: metadata only, never a secret.")

        @Option(help: "The user whose tokens to list.")
        var user: String

        @Option(help: "active, revoked, expired or all.")
        var status: String = "all"

        func validate() throws {
            guard TokenStatusFilter(rawValue: status) != nil else { throw ValidationError("--status must be active, revoked, expired or all") }
        }

        func run() async throws {
            let (user, status) = (user, TokenStatusFilter(rawValue: status)!)
            let tokens = try await withRepository { repository, logger in
                var all: [TokenRecord] = []
                var cursor: TokenCursor?
                repeat {
                    let page = try await repository.tokens(userID: user, status: status, limit: 100, after: cursor, logger: logger)
                    all += page.tokens
                    cursor = page.nextCursor
                } while cursor != nil
                return all
            }
            let now = Date()
            let dates = ISO8601DateFormatter()
            print(["ID", "PREFIX", "STATUS", "CREATED", "EXPIRES", "LAST USED", "NAME"].joined(separator: "\t"))
            for token in tokens {
                print(
                    [
                        token.id.uuidString.lowercased(), token.displayPrefix, token.status(at: now).rawValue,
                        dates.string(from: token.createdAt), dates.string(from: token.expiresAt),
                        token.lastUsedAt.map(dates.string(from:)) ?? "-", token.name ?? "-",
                    ].joined(separator: "\t"))
            }
            if tokens.isEmpty { print("(no tokens)") }
        }
    }

    /// `tessera tokens revoke`: one token with its lineage, or every active token of a user.
    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a token by id (with its rotation lineage), or every active token of a user with --user; audited as cli:<user>."
        )

        @Argument(help: "The token's id (a UUID).")
        var id: String?

        @Option(name: .customLong("user"), help: "Revoke every active token of this user instead, in one transaction.")
        var userID: String?

        func validate() throws {
            switch (id, userID) {
            case (nil, nil), (.some, .some): throw ValidationError("give either a token id or --user, not both")
            case (.some(let id), nil): guard UUID(uuidString: id) != nil else { throw ValidationError("the id must be a UUID") }
            case (nil, .some(let userID)): guard !userID.isEmpty else { throw ValidationError("--user needs a user id") }
            }
        }

        func run() async throws {
            if let userID {
                let revoked = try await withRepository { repository, logger in
                    try await repository.revokeAll(userID: userID, by: commandLineActor, logger: logger)
                }
                for id in revoked { print("revoked \(id.uuidString.lowercased())") }
                print("revoked \(revoked.count) active token(s) of the user")
                return
            }
            let id = UUID(uuidString: id!)!
            let outcome = try await withRepository { repository, logger in
                try await repository.revoke(id: id, by: commandLineActor, logger: logger)
            }
            switch outcome {
            case .revoked(_, let lineage):
                print("revoked \(id.uuidString.lowercased())")
                for member in lineage { print("revoked \(member.uuidString.lowercased()) (same rotation lineage)") }
            case .alreadyRevoked: print("\(id.uuidString.lowercased()) was already revoked")
            case .notFound: fail("no token has id \(id.uuidString.lowercased())")
            }
        }
    }
}
