#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The checkpoints of one run folder.
///
/// Each save writes `checkpoint-epochE.safetensors` (after epoch E, counted from 1) or
/// `checkpoint-epochE-stepS.safetensors` (S steps into epoch E), makes `checkpoint.safetensors`
/// a hard link to it, and then deletes all but the `keepCount` newest files of that pattern.
/// `checkpoint.safetensors` therefore always names the latest complete checkpoint and takes
/// no extra space. While a save runs, the folder holds up to `keepCount + 1` checkpoints.
public struct CheckpointFiles: Sendable {
    public let runDirectory: String
    public let keepCount: Int

    public init(runDirectory: String, keepCount: Int) {
        precondition(keepCount >= 1, "CheckpointFiles keepCount must be at least 1, got \(keepCount)")
        self.runDirectory = runDirectory
        self.keepCount = keepCount
    }

    /// The name that always refers to the latest checkpoint.
    public var latestPath: String { runDirectory + "/" + Checkpoint.fileName }

    public static func fileName(for position: TrainingPosition) -> String {
        if position.stepInEpoch == 0 {
            return "checkpoint-epoch\(position.epochsDone).safetensors"
        }
        return "checkpoint-epoch\(position.epochsDone + 1)-step\(position.stepInEpoch).safetensors"
    }

    /// Returns the position a `fileName(for:)` name stands for, or nil for any other name.
    public static func position(ofFileName name: String) -> TrainingPosition? {
        let prefix = "checkpoint-epoch"
        let suffix = ".safetensors"
        guard name.hasPrefix(prefix), name.hasSuffix(suffix), name.count > prefix.count + suffix.count else {
            return nil
        }
        let middle = name.dropFirst(prefix.count).dropLast(suffix.count)
        let parts = middle.split(separator: "-", omittingEmptySubsequences: false)
        func number(_ text: Substring) -> Int? {
            guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                return nil
            }
            return Int(text)
        }
        if parts.count == 1, let epoch = number(parts[0]) {
            return TrainingPosition(epochsDone: epoch, stepInEpoch: 0)
        }
        if parts.count == 2, parts[1].hasPrefix("step"), let epoch = number(parts[0]), epoch >= 1,
           let step = number(parts[1].dropFirst("step".count)), step >= 1 {
            return TrainingPosition(epochsDone: epoch - 1, stepInEpoch: step)
        }
        return nil
    }

    /// Returns the kept checkpoints, oldest first.
    public func keptCheckpoints() -> [(position: TrainingPosition, path: String)] {
        guard let stream = opendir(runDirectory) else {
            return []
        }
        defer { closedir(stream) }
        var found: [(position: TrainingPosition, path: String)] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let position = Self.position(ofFileName: name) {
                found.append((position, runDirectory + "/" + name))
            }
        }
        return found.sorted { $0.position < $1.position }
    }

    /// Writes `checkpoint` under its position's name, points `checkpoint.safetensors` at it and
    /// deletes the checkpoints beyond the newest `keepCount`.
    ///
    /// A failed write throws and leaves the previous checkpoints as they were. Returns a warning
    /// for each old checkpoint that could not be deleted, because that does not lose any work.
    public func save(_ checkpoint: Checkpoint) throws -> [String] {
        let position = TrainingPosition(epochsDone: checkpoint.epochsDone, stepInEpoch: checkpoint.stepInEpoch)
        let path = runDirectory + "/" + Self.fileName(for: position)
        try checkpoint.write(to: path)
        do {
            try AtomicFile.replace(latestPath, withLinkTo: path)
        } catch let error as FileIOError where [EPERM, EXDEV, EMLINK, ENOTSUP, EOPNOTSUPP].contains(error.code) {
            // A file system without hard links gets a second copy instead.
            try checkpoint.write(to: latestPath)
        }

        var warnings: [String] = []
        for old in keptCheckpoints().dropLast(keepCount) where old.path != path && unlink(old.path) != 0 {
            let reason = String(cString: strerror(errno))
            warnings.append("could not delete the old checkpoint \(old.path): \(reason)")
        }
        return warnings
    }
}
