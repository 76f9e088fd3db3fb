/// Logs, for 5 classes or fewer, that top-5 accuracy ranks every class and so is always 100%,
/// because a reader comparing runs would otherwise take it for a result.
func noteTopFiveCoversEveryClass(classCount: Int) {
    guard classCount <= 5 else {
        return
    }
    Console.log("note: with \(classCount) classes, top-5 includes every class and is always 100%; compare by top-1")
}
