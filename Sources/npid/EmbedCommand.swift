import Foundation
import NPID
import Torch

/// `npid embed`: features of every image of a folder, saved with their paths.
enum EmbedCommand {
    static let specs: [OptionSpec] = [
        OptionSpec("--checkpoint", value: "FILE", help: "checkpoint.safetensors written by npid train"),
        OptionSpec("--images", value: "DIR", help: "folder searched recursively for .jpg, .jpeg and .png files"),
        OptionSpec("--out", value: "FILE", help: "safetensors file to write"),
        OptionSpec("--layer", value: "NAME", help: "embedding (the D-dim unit feature) or pooled (backbone output) (default embedding)"),
        DataOptions.badImageSpec,
    ] + networkRuntimeSpecs

    static let help = helpText(
        usage: "npid embed --checkpoint FILE --images DIR --out FILE.safetensors",
        summary: """
        Computes the feature of every image below DIR (recursively, without augmentation) and
        writes a safetensors file: tensor "features" [N, D] float32 and, in the metadata,
        "paths", a JSON list of the images' paths relative to DIR in the same order. In Python:
          t = safetensors.torch.load_file(F)["features"]
          paths = json.loads(safetensors.safe_open(F, "pt").metadata()["paths"])
        """,
        specs: specs)

    /// Returns the scanned image whose name `outputPath` ends with, if any, so that only that
    /// one path is resolved and compared instead of every image of the folder.
    static func imagesThatMayBe(_ outputPath: String, under root: String, among relativePaths: [String]) -> [String] {
        let name = URL(fileURLWithPath: outputPath).lastPathComponent
        return relativePaths.filter { $0 == name || $0.hasSuffix("/" + name) }.map { root + "/" + $0 }
    }

    static func run(_ arguments: [String]) throws {
        let options = try ParsedOptions(arguments, specs: specs, command: "embed")
        let checkpointPath = try options.requiredString("--checkpoint")
        let imageRoot = try options.requiredString("--images")
        let outputPath = try options.requiredString("--out")
        let layer = try featureLayerOption(options, default: .embedding)
        let policy = try DataOptions.badImagePolicy(options)
        let runtime = try runtimeOptions(options)
        try requireFile(checkpointPath, flag: "--checkpoint")
        try requireOutputFolder(of: outputPath, flag: "--out")
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: imageRoot, isDirectory: &isFolder), isFolder.boolValue else {
            throw UsageError("--images \(imageRoot) does not exist or is not a folder; pass the folder that contains the images")
        }

        let model = try TrainedModel(checkpointPath: checkpointPath, runtime: runtime)
        try requireNotInput(outputPath, flag: "--out", inputs: [checkpointPath])
        // Another checkpoint of the run, such as an earlier epoch's, is as costly to lose as the input.
        if let header = try? Safetensors.readHeader(contentsOf: outputPath), header.metadata["format"] == Checkpoint.format {
            throw UsageError("--out \(outputPath) is an npid checkpoint, which embed would overwrite; write the embeddings to another file")
        }
        let relativePaths: [String]
        do {
            relativePaths = try ImageFileScan.relativePaths(under: imageRoot)
        } catch DataError.noImages {
            throw UsageError("--images \(imageRoot) contains no .jpg, .jpeg or .png file in it or its sub-folders; pass the folder that contains the images")
        }
        let root = imageRoot.hasSuffix("/") ? String(imageRoot.dropLast()) : imageRoot
        try requireNotInput(outputPath, flag: "--out", inputs: Self.imagesThatMayBe(outputPath, under: root, among: relativePaths))
        let started = Date()
        let embedded = try model.embed(paths: relativePaths.map { root + "/" + $0 }, layer: layer,
                                       threads: ProcessInfo.processInfo.activeProcessorCount,
                                       badImagePolicy: policy) { done in
            Console.progress("embedded \(done) of \(counted(relativePaths.count, "image"))")
        }
        Console.clearProgress()
        DataOptions.logSkipped(embedded.badFiles)
        guard !embedded.keptIndices.isEmpty else {
            throw DataError.badImages(files: embedded.badFiles)
        }
        let keptPaths = embedded.keptIndices.map { relativePaths[$0] }
        let dimension = embedded.features.count / keptPaths.count
        // An absolute root lets npid search find the images from any working directory.
        let absoluteRoot = URL(fileURLWithPath: root).standardizedFileURL.path
        try EmbeddingFile(features: embedded.features, dimension: dimension, paths: keptPaths, root: absoluteRoot,
                          checkpoint: checkpointPath, layer: layer,
                          networkFingerprint: model.networkFingerprint).write(to: outputPath)
        Console.output(String(format: "embedded %@ (%d-d %@ features) from %@ in %.1f s: %@",
                              counted(keptPaths.count, "image"), dimension, layer.rawValue, imageRoot,
                              Date().timeIntervalSince(started), outputPath))
    }
}
