import Foundation

/// What forward auth requires of an original request, by method and path: the first matching rule decides, and
/// a request no rule matches is denied.
///
/// Read from the JSON file `FORWARD_AUTH_RULES` names: an array of
/// `{"method": "POST", "path": "/orders/*", "scopes": ["orders:write"]}`, where `method` may be left out (or `*`)
/// for any, a `*` path segment matches one segment and a last `**` the rest (none or more), and a rule says
/// exactly one of `scopes` (a valid token covering them), `"allow": "anonymous"` (no token needed) or
/// `"deny": true`.
public struct ForwardAuthRules: Sendable, Equatable {
    /// One rule.
    public struct Rule: Sendable, Equatable {
        /// The method it applies to, or `nil` for any.
        public var method: String?
        /// The path pattern's segments.
        public var pattern: [Segment]
        /// What it requires.
        public var decision: Decision
        /// `METHOD /pattern`, as the file has it, for log lines and errors.
        public var label: String
    }

    /// One segment of a path pattern.
    public enum Segment: Sendable, Equatable {
        /// This text exactly (case-sensitive, after percent-decoding).
        case literal(String)
        /// `*`: any one segment.
        case any
        /// `**`, last: the rest of the path, none or more segments.
        case rest
    }

    /// What a matching rule requires.
    public enum Decision: Sendable, Equatable {
        /// An active token covering these scopes (none: any active token).
        case scopes([String])
        /// No token: the request passes as anonymous.
        case anonymous
        /// Refused, whatever the token.
        case deny
    }

    /// The rules, in the order they are tried.
    public var rules: [Rule]

    /// The first rule matching `method` and `path` (which may carry a query), or `nil` when none does or the
    /// path cannot be read unambiguously (a `.` or `..` segment, or an encoded `/`).
    public func rule(matching method: String, path: String) -> (index: Int, rule: Rule)? {
        guard let segments = Self.segments(of: path) else { return nil }
        for (index, rule) in rules.enumerated() where rule.method == nil || rule.method == method {
            if Self.matches(rule.pattern[...], segments[...]) { return (index, rule) }
        }
        return nil
    }

    /// The path's segments, percent-decoded, empty ones dropped; `nil` for a path whose meaning a server might
    /// read differently: dot segments, an encoded `/`, a `\` (a separator to some servers) or a `;` (path
    /// parameters, which some servers drop), bad percent-encoding.
    static func segments(of path: String) -> [String]? {
        let pathOnly = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard pathOnly.hasPrefix("/") else { return nil }
        var segments: [String] = []
        for raw in pathOnly.split(separator: "/") {
            guard let segment = String(raw).removingPercentEncoding, segment != ".", segment != "..",
                !segment.contains(where: { $0 == "/" || $0 == "\\" || $0 == ";" })
            else { return nil }
            segments.append(segment)
        }
        return segments
    }

    private static func matches(_ pattern: ArraySlice<Segment>, _ segments: ArraySlice<String>) -> Bool {
        guard let first = pattern.first else { return segments.isEmpty }
        switch first {
        case .rest: return true
        case .any: return !segments.isEmpty && matches(pattern.dropFirst(), segments.dropFirst())
        case .literal(let text): return segments.first == text && matches(pattern.dropFirst(), segments.dropFirst())
        }
    }
}

extension ForwardAuthRules {
    /// A rule file that cannot be used, naming the rule and what is wrong with it.
    public struct InvalidRules: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads the rules from the JSON text of a rules file; every rule is checked, and the first bad one is named.
    public init(json: Data) throws {
        guard let array = try? JSONSerialization.jsonObject(with: json) as? [Any] else {
            throw InvalidRules(description: "must be a JSON array of rules such as {\"method\": \"GET\", \"path\": \"/orders/*\", \"scopes\": [\"orders:read\"]}")
        }
        rules = try array.enumerated().map { index, element in
            guard let object = element as? [String: Any] else { throw InvalidRules(description: "rule \(index) must be a JSON object") }
            return try Self.rule(object, index: index)
        }
    }

    private static func rule(_ object: [String: Any], index: Int) throws -> Rule {
        let label = "\(object["method"] as? String ?? "*") \(object["path"] as? String ?? "?")"
        func invalid(_ message: String) -> InvalidRules { InvalidRules(description: "rule \(index) (\(label)) \(message)") }
        let known: Set<String> = ["method", "path", "scopes", "allow", "deny"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw invalid("has an unknown field '\(unknown)'; a rule has method, path and one of scopes, allow or deny")
        }
        var method: String?
        if let value = object["method"] {
            guard let text = value as? String, text == "*" || (!text.isEmpty && text.utf8.allSatisfy({ (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) })) else {
                throw invalid("needs method to be an upper-case HTTP method such as GET, or * for any")
            }
            method = text == "*" ? nil : text
        }
        guard let path = object["path"] as? String, path.hasPrefix("/") else { throw invalid("needs a path starting with /") }
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
        let decision: Decision
        switch decisions[0] {
        case "scopes":
            guard let scopes = object["scopes"] as? [String], scopes.count <= Scope.maximumCount else {
                throw invalid("needs scopes to be an array of at most \(Scope.maximumCount) scopes")
            }
            if let bad = scopes.first(where: { !Scope.isValid($0) }) { throw invalid("has scope '\(bad)', which \(Scope.grammar)") }
            decision = .scopes(scopes)
        case "allow":
            guard object["allow"] as? String == "anonymous" else { throw invalid("may only say \"allow\": \"anonymous\"") }
            decision = .anonymous
        default:
            guard object["deny"] as? Bool == true else { throw invalid("may only say \"deny\": true") }
            decision = .deny
        }
        return Rule(method: method, pattern: pattern, decision: decision, label: label)
    }
}

/// The request a proxy is asking about: its method and path (with any query).
public struct ForwardedRequest: Sendable, Equatable {
    /// Its method, such as `POST`.
    public var method: String
    /// Its path, such as `/orders/7?expand=items`.
    public var path: String
}
