import Foundation

extension ForwardAuthRules {
    /// Reads the rules from the JSON text of a rules file, parsed as strictly as request bodies (a repeated key is
    /// refused); every rule is checked, and the first bad one is named.
    public init(json: Data) throws {
        guard case .array(let array)? = try? JSONParser.parse([UInt8](json)) else {
            throw InvalidRules(
                description: "must be a JSON array of rules such as {\"method\": \"GET\", \"path\": \"/orders/*\", \"scopes\": [\"orders:read\"]}, each key once")
        }
        rules = try array.enumerated().map { index, element in
            guard case .object(let object) = element else { throw InvalidRules(description: "rule \(index) must be a JSON object") }
            return try Self.rule(object, index: index)
        }
    }

    private static func rule(_ object: [String: JSONValue], index: Int) throws -> Rule {
        func text(_ key: String) -> String? {
            if case .string(let text)? = object[key] { return text }
            return nil
        }
        let label = "\(text("method") ?? "*") \(text("path") ?? "?")"
        func invalid(_ message: String) -> InvalidRules { InvalidRules(description: "rule \(index) (\(label)) \(message)") }
        let known: Set<String> = ["method", "path", "scopes", "allow", "deny"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw invalid("has an unknown field '\(unknown)'; a rule has method, path and one of scopes, allow or deny")
        }
        var method: String?
        if object["method"] != nil {
            guard let text = text("method"), text == "*" || (!text.isEmpty && text.utf8.allSatisfy({ (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }))
            else { throw invalid("needs method to be an upper-case HTTP method such as GET, or * for any") }
            method = text == "*" ? nil : text
        }
        guard let path = text("path"), path.hasPrefix("/") else { throw invalid("needs a path starting with /") }
        let parts = path.split(separator: "/")
        var pattern: [Segment] = []
        for (position, part) in parts.enumerated() {
            switch part {
            case "**":
                guard position == parts.count - 1 else { throw invalid("may have ** only as its last segment") }
                pattern.append(.rest)
            case "*": pattern.append(.any)
            default:
                guard !part.contains("*") else { throw invalid("may use * only as a whole segment") }
                guard let segment = String(part).removingPercentEncoding, segment != ".", segment != ".." else {
                    throw invalid("has a segment that is not a plain path segment: '\(part)'")
                }
                pattern.append(.literal(segment))
            }
        }
        let decisions = ["scopes", "allow", "deny"].filter { object[$0] != nil }
        guard decisions.count == 1 else { throw invalid("must say exactly one of scopes, allow or deny") }
        switch (decisions[0], object[decisions[0]]) {
        case ("scopes", .array(let values)?):
            let scopes = values.compactMap { value -> String? in
                if case .string(let scope) = value { return scope }
                return nil
            }
            guard scopes.count == values.count, scopes.count <= Scope.maximumCount else {
                throw invalid("needs scopes to be an array of at most \(Scope.maximumCount) scopes")
            }
            if let bad = scopes.first(where: { !Scope.isValid($0) }) { throw invalid("has scope '\(bad)', which \(Scope.grammar)") }
            return Rule(method: method, pattern: pattern, decision: .scopes(scopes), label: label)
        case ("scopes", _):
            throw invalid("needs scopes to be an array of at most \(Scope.maximumCount) scopes")
        case ("allow", .string("anonymous")?):
            return Rule(method: method, pattern: pattern, decision: .anonymous, label: label)
        case ("allow", _):
            throw invalid("may only say \"allow\": \"anonymous\"")
        case (_, .bool(true)?):
            return Rule(method: method, pattern: pattern, decision: .deny, label: label)
        default:
            throw invalid("may only say \"deny\": true")
        }
    }
}
