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
}

/// The request a proxy is asking about: its method and path (with any query).
public struct ForwardedRequest: Sendable, Equatable {
    /// Its method, such as `POST`.
    public var method: String
    /// Its path, such as `/orders/7?expand=items`.
    public var path: String
}
