import HTTPTypes

extension HTTPFields {
    /// The value of the field `name`, exactly as `self[name]` gives it (several fields joined), but read by a plain
    /// loop: the subscript joins through a lazy generic sequence even for one field, which cost about half a
    /// microsecond per read on the verification path (docs/performance.md).
    func value(of name: HTTPField.Name) -> String? {
        var found: String?
        for field in self where field.name == name {
            if found != nil { return self[name] }
            found = field.value
        }
        return found
    }
}
