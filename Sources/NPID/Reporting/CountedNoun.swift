/// Returns `count` followed by `noun`, in the plural unless `count` is 1: "1 image", "2 images",
/// "3 classes". `plural` replaces the regular English plural for an irregular noun.
public func counted(_ count: Int, _ noun: String, plural: String? = nil) -> String {
    guard count != 1 else {
        return "1 \(noun)"
    }
    if let plural {
        return "\(count) \(plural)"
    }
    let takesES = ["s", "x", "z", "ch", "sh"].contains { noun.hasSuffix($0) }
    return "\(count) \(noun)\(takesES ? "es" : "s")"
}
