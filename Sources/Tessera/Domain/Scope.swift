/// Scope strings: their grammar and the rule by which granted scopes cover required ones.
///
/// A scope is 1-64 characters: segments of `A-Z a-z 0-9 . _ / -` separated by `:`, whose last segment may instead
/// be the wildcard `*` (`repo:read`, `repo:*`, `*`). Nothing else holds a `*`.
public enum Scope {
    /// Longest scope accepted.
    public static let maximumLength = 64
    /// Most scopes on one token.
    public static let maximumCount = 32
    /// The grammar in words, for error messages.
    public static let grammar = "must be 1 to 64 characters: segments of A-Z a-z 0-9 . _ / - separated by ':', the last of which may be '*' alone"
    /// The wildcard that grants every scope, refused at creation unless `ALLOW_WILDCARD_ALL_SCOPE=true`.
    public static let everything = "*"

    private static let segmentPunctuation = Set("._/-".utf8)

    /// Whether `scope` follows the grammar.
    public static func isValid(_ scope: String) -> Bool {
        guard (1...maximumLength).contains(scope.utf8.count) else { return false }
        let segments = scope.utf8.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        return segments.indices.allSatisfy { index in
            let segment = segments[index]
            if index == segments.index(before: segments.endIndex), segment.elementsEqual("*".utf8) { return true }
            return !segment.isEmpty && segment.allSatisfy { $0.isASCIIAlphanumeric || segmentPunctuation.contains($0) }
        }
    }

    /// Whether a token granted `granted` may do what `required` names.
    ///
    /// Scopes match exactly, except that a granted scope whose last segment is `*` covers every scope with the
    /// segments before it: `repo:*` covers `repo:read` and `repo:read:x` (never `repository`), and `*` covers everything.
    public static func covers(_ granted: [String], _ required: String) -> Bool {
        granted.contains { scope in
            scope == required || scope == everything
                || (scope.hasSuffix(":*") && required.utf8.count > scope.utf8.count - 1 && required.hasPrefix(scope.dropLast()))
        }
    }
}
