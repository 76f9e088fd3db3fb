import Foundation
import NPID

// Option readers and checks shared by several subcommands.

/// Reads --seed as an unsigned 64-bit number, defaulting to the training default.
func seedOption(_ options: ParsedOptions) throws -> UInt64 {
    guard let text = options.string("--seed") else { return TrainingConfiguration.defaults.seed }
    guard let seed = UInt64(text) else {
        throw UsageError("--seed expects a whole number from 0 to \(UInt64.max), got '\(text)'")
    }
    return seed
}

/// Throws a usage error naming `flag` when the folder that would contain `path` does not exist.
func requireOutputFolder(of path: String, flag: String) throws {
    let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
        throw UsageError("\(flag) \(path): folder \(folder) does not exist; create it or write the file elsewhere")
    }
}
