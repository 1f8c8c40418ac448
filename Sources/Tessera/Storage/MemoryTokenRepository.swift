import Foundation
import Logging
import TokenCrypto

/// Tokens in process memory, for router tests and local experiments; nothing survives a restart.
public actor MemoryTokenRepository: TokenRepository {
    private var records: [UUID: TokenRecord] = [:]
    /// Every audit row written, oldest first.
    public private(set) var auditTrail: [AuditEvent] = []
    private var lastCreatedAt: Int64 = 0

    /// Creates an empty repository.
    public init() {}

    public func create(_ token: NewToken, logger: Logger) throws -> TokenRecord {
        guard !records.values.contains(where: { $0.digest.bytes == token.digest.bytes }) else { throw StorageError.duplicateDigest }
        let now = Date()
        // Strictly increasing creation times keep the listing order total, as PostgreSQL's order by (created_at, id) is.
        lastCreatedAt = max(lastCreatedAt + 1, now.microsecondsSince1970)
        let record = TokenRecord(
            token, id: UUID(), createdAtMicroseconds: lastCreatedAt, expiresAt: now.addingTimeInterval(Double(token.lifetimeMinutes) * 60))
        if let refill = token.policy.refill { refilledAt[record.id] = Self.periodStart(refill.period, of: now) }
        records[record.id] = record
        recordAudit(action: "token.create", actor: token.createdBy, token: record)
        return record
    }

    public func token(id: UUID, logger: Logger) -> TokenRecord? {
        records[id]
    }

    public func token(matchingAnyOf digests: [TokenDigest], logger: Logger) -> TokenRecord? {
        let wanted = Set(digests.map(\.bytes))
        return records.values.first { wanted.contains($0.digest.bytes) }
    }

    public func tokens(userID: String, status: TokenStatusFilter, limit: Int, after cursor: TokenCursor?, logger: Logger) -> TokenPage {
        let now = Date()
        let matching = records.values
            .filter { $0.userID == userID && (status == .all || $0.status(at: now).rawValue == status.rawValue) }
            .filter { record in cursor.map { Self.isOrdered(record.cursor, after: $0) } ?? true }
            .sorted { Self.isOrdered($1.cursor, after: $0.cursor) }
        let page = Array(matching.prefix(limit))
        return TokenPage(tokens: page, nextCursor: matching.count > limit ? page.last?.cursor : nil)
    }

    public func revoke(id: UUID, by actor: String, details: [String: String], logger: Logger) -> RevocationOutcome {
        guard var record = records[id] else { return .notFound }
        guard record.revokedAt == nil else { return .alreadyRevoked(record) }
        let now = Date()
        record.revokedAt = now
        records[id] = record
        recordAudit(action: "token.revoke", actor: actor, token: record, details: details)
        // The rest of its rotation lineage, both ways.
        var lineage: [UUID] = []
        var seen: Set<UUID> = [id]
        var next = [record.replaces, record.replacedBy].compactMap { $0 }
        while let memberID = next.popLast() {
            guard seen.insert(memberID).inserted, var member = records[memberID] else { continue }
            next += [member.replaces, member.replacedBy].compactMap { $0 }
            guard member.revokedAt == nil else { continue }
            member.revokedAt = now
            records[memberID] = member
            recordAudit(action: "token.revoke", actor: actor, token: member, details: details.merging(["revokedWith": id.lowercasedString]) { _, lineage in lineage })
            lineage.append(memberID)
        }
        return .revoked(record, lineage: lineage)
    }

    public func update(id: UUID, with changes: TokenChanges, by actor: String, logger: Logger) -> UpdateOutcome {
        guard let record = records[id] else { return .notFound }
        guard record.revokedAt == nil else { return .revoked }
        let refusals = changes.refusals(for: record, at: Date())
        guard refusals.isEmpty else { return .refused(refusals) }
        let updated = changes.applied(to: record)
        records[id] = updated
        if changes.restartsRefillPeriod, let refill = updated.policy.refill {
            refilledAt[id] = Self.periodStart(refill.period, of: Date())
        }
        recordAudit(action: "token.update", actor: actor, token: updated, details: ["fields": changes.fieldNames.joined(separator: ",")])
        return .updated(updated)
    }

    public func spendUse(of id: UUID, logger: Logger) -> Int? {
        guard var record = records[id], record.policy.maxUses != nil else { return nil }
        let now = Date()
        if let refill = record.policy.refill, let last = refilledAt[id], Self.periodStart(refill.period, of: now) > last {
            record.usesLeft = refill.amount
            refilledAt[id] = Self.periodStart(refill.period, of: now)
        }
        guard let left = record.usesLeft, left > 0 else { return nil }
        record.usesLeft = left - 1
        records[id] = record
        return left - 1
    }

    /// When each usage-limited token was last refilled (the start of that period).
    private var refilledAt: [UUID: Date] = [:]

    /// The start of the UTC `period` holding `date`.
    private static func periodStart(_ period: UsageRefill.Period, of date: Date) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let components: Set<Calendar.Component> = switch period {
        case .hour: [.year, .month, .day, .hour]
        case .day: [.year, .month, .day]
        case .month: [.year, .month]
        }
        return calendar.date(from: calendar.dateComponents(components, from: date))!
    }

    public func revokeAll(userID: String, by actor: String, logger: Logger) -> [UUID] {
        let now = Date()
        let active = records.values.filter { $0.userID == userID && $0.status(at: now) == .active }.map(\.id)
        for id in active { records[id]?.revokedAt = now }
        auditTrail.append(
            AuditEvent(
                id: Int64(auditTrail.count + 1), occurredAt: now, actor: actor, action: "tokens.revoke", tokenID: nil, userID: userID,
                details: ["revoked": "\(active.count)"]))
        return active
    }

    public func rehash(id: UUID, from oldDigest: TokenDigest, to newDigest: TokenDigest, logger: Logger) {
        guard records[id]?.digest == oldDigest else { return }
        records[id]?.digest = newDigest
    }

    public func rotate(id: UUID, to digest: TokenDigest, displayPrefix: String, graceSeconds: Int, by actor: String, logger: Logger)
        throws -> RotationOutcome
    {
        guard var old = records[id] else { return .notFound }
        let now = Date()
        let status = old.status(at: now)
        guard status == .active else { return .notActive(status) }
        guard old.replacedBy == nil else { return .alreadyRotated }
        guard !records.values.contains(where: { $0.digest.bytes == digest.bytes }) else { throw StorageError.duplicateDigest }
        lastCreatedAt = max(lastCreatedAt + 1, now.microsecondsSince1970)
        var new = old
        new.id = UUID()
        new.digest = digest
        new.displayPrefix = displayPrefix
        new.createdAtMicroseconds = lastCreatedAt
        new.lastUsedAt = nil
        new.createdBy = actor
        new.replaces = id
        old.expiresAt = min(old.expiresAt, now.addingTimeInterval(Double(graceSeconds)))
        old.replacedBy = new.id
        records[id] = old
        records[new.id] = new
        refilledAt[new.id] = refilledAt[id]
        recordAudit(action: "token.rotate", actor: actor, token: old, details: ["replacedBy": new.id.lowercasedString, "graceSeconds": "\(graceSeconds)"])
        recordAudit(action: "token.create", actor: actor, token: new, details: ["rotatedFrom": id.lowercasedString])
        return .rotated(new)
    }

    public func recordUses(_ uses: [UUID: Date], logger: Logger) {
        for (id, time) in uses where records[id] != nil {
            if let stored = records[id]?.lastUsedAt, stored >= time { continue }
            records[id]?.lastUsedAt = time
        }
    }

    public func purge(olderThan age: Int, by actor: String, logger: Logger) -> Int {
        let cutoff = Date().addingTimeInterval(-Double(age))
        let doomed = records.values.filter { $0.expiresAt < cutoff || ($0.revokedAt.map { $0 < cutoff } ?? false) }
        for record in doomed { records[record.id] = nil }
        auditTrail.append(
            AuditEvent(
                id: Int64(auditTrail.count + 1), occurredAt: Date(), actor: actor, action: "tokens.purge", tokenID: nil, userID: nil,
                details: ["deleted": "\(doomed.count)", "olderThanSeconds": "\(age)"]))
        return doomed.count
    }

    public func auditEvents(_ query: AuditQuery, logger: Logger) -> AuditPage {
        let matching = auditTrail.reversed().filter { event in
            (query.tokenID == nil || event.tokenID == query.tokenID) && (query.userID == nil || event.userID == query.userID)
                && (query.before.map { event.id < $0 } ?? true)
        }
        let page = Array(matching.prefix(query.limit))
        return AuditPage(events: page, nextCursor: matching.count > query.limit ? page.last?.id : nil)
    }

    private func recordAudit(action: String, actor: String, token: TokenRecord, details: [String: String] = [:]) {
        auditTrail.append(
            AuditEvent(
                id: Int64(auditTrail.count + 1), occurredAt: Date(), actor: actor, action: action, tokenID: token.id, userID: token.userID,
                details: details)
        )
    }

    /// Whether `cursor` comes after `other` in newest-first order: earlier creation, then smaller id.
    private static func isOrdered(_ cursor: TokenCursor, after other: TokenCursor) -> Bool {
        if cursor.createdAtMicroseconds != other.createdAtMicroseconds { return cursor.createdAtMicroseconds < other.createdAtMicroseconds }
        return cursor.id.uuidString.lowercased() < other.id.uuidString.lowercased()
    }
}
