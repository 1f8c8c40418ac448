import Foundation

/// Checks shared by several fields.
enum TextRules {
    /// Whether `text` holds a control character (Unicode category Cc), which no identifier or name may contain.
    static func hasControlCharacter(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    /// The error for a user id to search by, or `nil` when it is 1-128 characters with no control characters:
    /// lenient enough to find tokens issued under the rules of ``newUserIDProblem(_:)``'s predecessors.
    static func userIDProblem(_ userID: String) -> String? {
        // Lengths count Unicode code points, as JSON Schema's maxLength does.
        if userID.isEmpty || userID.unicodeScalars.count > 128 { return "must be 1 to 128 characters" }
        if hasControlCharacter(userID) { return "must not contain control characters" }
        return nil
    }

    /// The error for the user id of a new token, or `nil` when it is exact: 1-128 characters, none of them a control,
    /// invisible format (such as zero-width or bidirectional) or line or paragraph separator character, and no
    /// white space at either end, so it reads the same in a listing and survives an HTTP header unchanged. The
    /// characters are listed, not looked up by Unicode category, so that the OpenAPI schema's `NewUserId` pattern
    /// says exactly the same.
    static func newUserIDProblem(_ userID: String) -> String? {
        if let problem = userIDProblem(userID) { return problem }
        if userID.unicodeScalars.contains(where: { isListed($0, in: invisibleInUserIDs) }) {
            return "must not contain format, line separator or paragraph separator characters"
        }
        if let first = userID.unicodeScalars.first, let last = userID.unicodeScalars.last,
            isListed(first, in: whiteSpaceAtUserIDEdges) || isListed(last, in: whiteSpaceAtUserIDEdges)
        {
            return "must not start or end with white space"
        }
        return nil
    }

    /// Format and separator characters no new user id may hold (controls are refused already).
    static let invisibleInUserIDs: [ClosedRange<UInt32>] = [
        0xAD...0xAD, 0x600...0x605, 0x61C...0x61C, 0x6DD...0x6DD, 0x70F...0x70F, 0x180E...0x180E, 0x200B...0x200F,
        0x2028...0x202E, 0x2060...0x206F, 0xFEFF...0xFEFF, 0xFFF9...0xFFFB,
    ]
    /// White space no new user id may start or end with.
    static let whiteSpaceAtUserIDEdges: [ClosedRange<UInt32>] = [
        0x20...0x20, 0xA0...0xA0, 0x1680...0x1680, 0x2000...0x200A, 0x202F...0x202F, 0x205F...0x205F, 0x3000...0x3000,
    ]

    private static func isListed(_ scalar: Unicode.Scalar, in ranges: [ClosedRange<UInt32>]) -> Bool {
        ranges.contains { $0.contains(scalar.value) }
    }

    /// Reads a token's `audiences`, `allowedCidrs`, `meta`, usage and rate limits from `reader`; `keyNames` are the configured API keys'
    /// names, the only audiences there can be.
    static func policy(from reader: inout FieldReader, keyNames: Set<String>) -> TokenPolicy {
        let refill = refill(reader.value("refill"), into: &reader)
        // A refill alone limits the token to its amount.
        let maxUses = reader.integer("maxUses", required: false, in: TokenPolicy.usesRange) ?? refill?.amount
        return TokenPolicy(
            audiences: audiences(reader.strings("audiences"), keyNames: keyNames, into: &reader),
            allowedNetworks: networks(reader.strings("allowedCidrs"), into: &reader),
            meta: meta(reader.value("meta"), into: &reader),
            maxUses: maxUses,
            refill: refill,
            rateLimit: rateLimit(reader.value("rateLimit"), into: &reader)
        )
    }

    /// Validates `rateLimit`: `"<quota>/<seconds>s"`, 1 to 10000000 verifications per 1 to 86400 seconds.
    static func rateLimit(_ value: JSONValue?, into reader: inout FieldReader) -> RateLimitPolicy? {
        switch value {
        case nil, .null?: return nil
        case .string(let text)?:
            // Whole numbers without signs or leading zeros, as the OpenAPI pattern has them.
            let numbers = text.dropLast().split(separator: "/", omittingEmptySubsequences: false)
            let plain = numbers.allSatisfy { number in
                number.first != "0" && !number.isEmpty && number.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
            }
            guard text.hasSuffix("s"), plain, let policy = RateLimitPolicy(name: TokenPolicy.rateLimitName, parsing: text) else {
                reader.fail("rateLimit", "must look like 100/60s: 1 to 10000000 verifications per 1 to 86400 seconds")
                return nil
            }
            return policy
        case let other?:
            reader.fail("rateLimit", "must be a string such as \"100/60s\", not a \(other.typeName)")
            return nil
        }
    }

    /// Validates `refill`: `{"amount": 1-1000000000, "every": "hour" | "day" | "month"}`.
    static func refill(_ value: JSONValue?, into reader: inout FieldReader) -> UsageRefill? {
        switch value {
        case nil, .null?: return nil
        case .object(let members)?:
            var fields = FieldReader(members, allowed: ["amount", "every"])
            let amount = fields.integer("amount", required: true, in: TokenPolicy.usesRange)
            let every = fields.string("every", required: true)
            let period = every.flatMap(UsageRefill.Period.init(rawValue:))
            if every != nil, period == nil { fields.fail("every", "must be hour, day or month") }
            for error in fields.errors { reader.fail("refill.\(error.field)", error.message) }
            guard fields.errors.isEmpty, let amount, let period else { return nil }
            return UsageRefill(amount: amount, every: period)
        case let other?:
            reader.fail("refill", "must be an object such as {\"amount\": 100, \"every\": \"day\"}, not a \(other.typeName)")
            return nil
        }
    }

    /// Validates `audiences`: 1 to 32 distinct names of configured API keys.
    static func audiences(_ names: [String]?, keyNames: Set<String>, into reader: inout FieldReader) -> [String]? {
        guard let names else { return nil }
        guard (1...TokenPolicy.maximumEntries).contains(names.count) else {
            reader.fail("audiences", "must name 1 to \(TokenPolicy.maximumEntries) API keys, or be left out to let any verifier")
            return nil
        }
        var valid = true
        for (index, name) in names.enumerated() where !keyNames.contains(name) || names[..<index].contains(name) {
            reader.fail("audiences[\(index)]", keyNames.contains(name) ? "repeats the API key '\(name)'" : "names no configured API key")
            valid = false
        }
        return valid ? names : nil
    }

    /// Validates `allowedCidrs`: 1 to 32 networks in CIDR form (`10.0.0.0/8`, `2001:db8::/32`) or single addresses.
    static func networks(_ texts: [String]?, into reader: inout FieldReader) -> [IPNetwork]? {
        guard let texts else { return nil }
        guard (1...TokenPolicy.maximumEntries).contains(texts.count) else {
            reader.fail("allowedCidrs", "must hold 1 to \(TokenPolicy.maximumEntries) networks, or be left out to allow any address")
            return nil
        }
        var networks: [IPNetwork] = []
        for (index, text) in texts.enumerated() {
            guard let network = IPNetwork(cidr: text) else {
                reader.fail("allowedCidrs[\(index)]", "must be an IPv4 or IPv6 network such as 10.0.0.0/8 or 2001:db8::/32, or one address")
                continue
            }
            networks.append(network)
        }
        return networks.count == texts.count ? networks : nil
    }

    /// Validates `meta`: a JSON object of at most 4 KiB as compact JSON; returns that compact text.
    static func meta(_ value: JSONValue?, into reader: inout FieldReader) -> String? {
        switch value {
        case nil, .null?: return nil
        case .object(let members)?:
            let text = JSONValue.object(members).compactText
            guard text.utf8.count <= TokenPolicy.maximumMetaBytes else {
                reader.fail("meta", "must be at most \(TokenPolicy.maximumMetaBytes) bytes as compact JSON; this one is \(text.utf8.count)")
                return nil
            }
            return text
        case let other?:
            reader.fail("meta", "must be a JSON object, not a \(other.typeName)")
            return nil
        }
    }

    /// Validates a scope list, recording errors under `field`; returns it when valid.
    static func scopes(_ scopes: [String]?, field: String, into reader: inout FieldReader) -> [String]? {
        guard let scopes else { return nil }
        var valid = true
        if scopes.count > Scope.maximumCount {
            reader.fail(field, "must hold at most \(Scope.maximumCount) scopes")
            valid = false
        }
        var seen = Set<String>()
        for (index, scope) in scopes.enumerated() {
            if !Scope.isValid(scope) {
                reader.fail("\(field)[\(index)]", Scope.grammar)
                valid = false
            } else if !seen.insert(scope).inserted {
                reader.fail("\(field)[\(index)]", "repeats the scope '\(scope)'")
                valid = false
            }
        }
        return valid ? scopes : nil
    }
}
