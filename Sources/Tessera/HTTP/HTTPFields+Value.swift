import HTTPTypes

extension HTTPFields {
    /// The value of the field `name` as `self[name]` gives it, repeated fields joined.
    ///
    /// Read by a plain loop: the subscript joins through a lazy generic sequence even for one field, about 0.25 µs
    /// a read on the verification path (docs/performance.md).
    package func value(of name: HTTPField.Name) -> String? {
        var found: String?
        for field in self where field.name == name {
            if found != nil { return self[name] }
            found = field.value
        }
        return found
    }
}
