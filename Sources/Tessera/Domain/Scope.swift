/// Scope strings: syntax and the rule by which granted scopes cover required ones.
public enum Scope {
    /// Longest scope accepted.
    public static let maximumLength = 64
    /// Most scopes on one token.
    public static let maximumCount = 32

    /// Whether `scope` is 1-64 characters of `[A-Za-z0-9._:/*-]`.
    public static func isValid(_ scope: String) -> Bool {
        (1...maximumLength).contains(scope.utf8.count)
            && scope.utf8.allSatisfy { $0.isASCIIAlphanumeric || Array("._:/*-".utf8).contains($0) }
    }

    /// Whether a token granted `granted` may do what `required` names.
    ///
    /// Scopes match exactly, except that a granted scope ending in `*` covers every scope that starts with the text
    /// before it: `repo:*` covers `repo:read`, and `*` covers everything.
    public static func covers(_ granted: [String], _ required: String) -> Bool {
        granted.contains { scope in
            scope == required || (scope.hasSuffix("*") && required.hasPrefix(scope.dropLast()))
        }
    }
}
