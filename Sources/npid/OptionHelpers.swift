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

/// Reads --layer, or returns `defaultLayer` when it is not given. The message lists the
/// default first, as each command's help does.
func featureLayerOption(_ options: ParsedOptions, default defaultLayer: FeatureLayer) throws -> FeatureLayer {
    guard let name = options.string("--layer") else {
        return defaultLayer
    }
    guard let layer = FeatureLayer(rawValue: name) else {
        let other: FeatureLayer = defaultLayer == .embedding ? .pooled : .embedding
        throw UsageError("unknown --layer '\(name)'; choose \(defaultLayer.rawValue) or \(other.rawValue)")
    }
    return layer
}

/// Throws a usage error when one batch of `batchSize` float32 images of `imageSize` × `imageSize`
/// pixels needs more than this machine's memory. The loader allocates each batch in one piece,
/// and Swift stops the process without a message when such an allocation fails.
func requireBatchFitsMemory(imageSize: Int, batchSize: Int) throws {
    try requireFitsMemory(bytes: Double(batchSize) * Double(imageSize) * Double(imageSize) * 3 * 4,
                          request: "--image-size \(imageSize) with batches of \(counted(batchSize, "image"))",
                          use: "the pixels of one batch", advice: "choose a smaller --image-size or -b")
}

/// Throws a usage error when `bytes` exceed this machine's physical memory, naming the `request`
/// that needs them, their `use`, and the `advice` to follow.
func requireFitsMemory(bytes: Double, request: String, use: String, advice: String) throws {
    let memoryBytes = Double(ProcessInfo.processInfo.physicalMemory)
    guard bytes <= memoryBytes else {
        throw UsageError("\(request) needs " + String(format: "%.1f GB", bytes / 1e9) + " for \(use), more than this machine's "
                         + String(format: "%.1f GB", memoryBytes / 1e9) + " of memory; \(advice)")
    }
}

/// Throws a usage error when `count` threads for `flag` exceed the larger of 64 and 4 per core. Far more
/// threads than cores only slow a run down, and tens of thousands take minutes to start.
func requireThreadCountBelowLimit(_ count: Int, flag: String) throws {
    let cores = ProcessInfo.processInfo.activeProcessorCount
    let limit = max(64, 4 * cores)
    guard count <= limit else {
        throw UsageError("\(flag) \(count) is more than \(limit), the limit for this machine's \(counted(cores, "core")); "
                         + "pass at most \(limit), and about one per core for speed")
    }
}

/// Throws a usage error naming `flag` when `path` does not exist or is a folder.
func requireFile(_ path: String, flag: String) throws {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
        throw UsageError("\(flag) \(path) does not exist")
    }
    guard !isFolder.boolValue else {
        throw UsageError("\(flag) \(path) is a folder; \(fileAdvice(for: flag))")
    }
}

/// Returns what to pass to `flag` in place of a folder. --index reads an embeddings file, and
/// the other flags checked by `requireFile` read a checkpoint.
func fileAdvice(for flag: String) -> String {
    switch flag {
    case "--index":
        return "pass the .safetensors file that npid embed wrote"
    default:
        return "pass the checkpoint.safetensors file inside it"
    }
}

/// Throws a usage error naming `flag` when the folder that would contain `path` does not exist.
func requireOutputFolder(of path: String, flag: String) throws {
    let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
        throw UsageError("\(flag) \(path): folder \(folder) does not exist; create it or write the file elsewhere")
    }
    guard !(FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) && isFolder.boolValue) else {
        throw UsageError("\(flag) \(path) is a folder; name a file to write")
    }
}

/// Checks that the PNG picture at `path` has a name ending in .png and replaces none of
/// the `inputs`, which would be lost.
func requirePictureOutput(_ path: String, flag: String, inputs: [String]) throws {
    try requireOutputFolder(of: path, flag: flag)
    guard path.lowercased().hasSuffix(".png") else {
        throw UsageError("\(flag) \(path) must end in .png, because the picture is written as PNG")
    }
    try requireNotInput(path, flag: flag, inputs: inputs)
}

/// Checks that the output file `path` replaces none of the data set's `images`. Only the images
/// with the same file name are resolved and compared, because a data set may hold millions.
func requireNotAmongImages(_ path: String, flag: String, images: [String]) throws {
    let name = URL(fileURLWithPath: path).lastPathComponent
    let candidates = images.filter { $0 == name || $0.hasSuffix("/" + name) }
    try requireNotInput(path, flag: flag, inputs: candidates)
}

/// Checks that the output file `path` differs from each of the `inputs`, compared after resolving
/// symbolic links and relative parts.
func requireNotInput(_ path: String, flag: String, inputs: [String]) throws {
    let resolve = { (file: String) in URL(fileURLWithPath: file).resolvingSymlinksInPath().standardizedFileURL.path }
    let output = resolve(path)
    if let input = inputs.first(where: { resolve($0) == output }) {
        throw UsageError("\(flag) \(path) would overwrite the input \(input); write to another file")
    }
}
