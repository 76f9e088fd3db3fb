import Dispatch
import Foundation
import Torch

/// Image files found recursively under a folder, for embedding any collection of images.
public enum ImageFileScan {
    /// Returns the paths, relative to `root`, of every .jpg, .jpeg or .png file (any letter
    /// case) below it, sorted byte-wise on UTF-8.
    ///
    /// Names starting with "." are skipped. Symbolic links to files count; symbolic links to
    /// folders are not followed, so a link cycle cannot make the scan endless. A broken link or
    /// another entry that is not a regular file counts too, so embedding reports it as a bad file.
    /// - Throws: `DataError.missingFolder` when `root` is not a folder, `.noImages` when it
    ///   contains no image file.
    public static func relativePaths(under root: String) throws -> [String] {
        let root = ImageFolder.trimTrailingSlashes(root)
        guard ImageFolder.isFolder(root) else {
            throw DataError.missingFolder(path: root)
        }
        var found: [String] = []
        var pending = [""]
        while let relative = pending.popLast() {
            let folder = relative.isEmpty ? root : root + "/" + relative
            for name in try ImageFolder.listNames(in: folder) where !name.hasPrefix(".") {
                let child = relative.isEmpty ? name : relative + "/" + name
                let path = root + "/" + child
                if isRealFolder(path) {
                    pending.append(child)
                } else if ImageFolder.isImageFileName(name) && !ImageFolder.isFolder(path) {
                    found.append(child)
                }
            }
        }
        guard !found.isEmpty else {
            throw DataError.noImages(path: root)
        }
        return found.sorted(by: ImageFolder.bytewiseLess)
    }

    /// True for a folder that is not reached through a symbolic link.
    private static func isRealFolder(_ path: String) -> Bool {
        var status = stat()
        return lstat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
    }
}

/// Features of a collection of images with their paths, stored as safetensors so that
/// Python reads them with `safetensors.torch.load_file` and `json.loads`.
///
/// Tensor `features` [N, D] float32, row i belonging to `paths[i]`. Metadata: `format`,
/// `paths` (JSON list of paths relative to `root`), `root`, `checkpoint`, `layer` and
/// `network_crc32c` (the checkpoint's `TrainedModel.networkFingerprint`; absent in files of
/// earlier versions).
public struct EmbeddingFile {
    public static let format = "swift-npid-embeddings-1"

    /// Row-major [count, dimension] values.
    public var features: [Float]
    public var dimension: Int
    public var paths: [String]
    public var root: String
    public var checkpoint: String
    public var layer: FeatureLayer
    /// Fingerprint of the network weights that computed the features.
    public var networkFingerprint: String?

    public init(features: [Float], dimension: Int, paths: [String], root: String, checkpoint: String, layer: FeatureLayer,
                networkFingerprint: String? = nil) {
        precondition(features.count == paths.count * dimension, "EmbeddingFile needs one row of features per path")
        self.features = features
        self.dimension = dimension
        self.paths = paths
        self.root = root
        self.checkpoint = checkpoint
        self.layer = layer
        self.networkFingerprint = networkFingerprint
    }

    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let pathList = String(decoding: try encoder.encode(paths), as: UTF8.self)
        let tensor = SafetensorsTensor(name: "features", shape: [paths.count, dimension], values: features)
        var metadata = ["format": Self.format, "paths": pathList, "root": root, "checkpoint": checkpoint,
                        "layer": layer.rawValue]
        metadata["network_crc32c"] = networkFingerprint
        try Safetensors.write([tensor], metadata: metadata, to: path)
    }

    public static func read(contentsOf path: String) throws -> EmbeddingFile {
        let contents = try Safetensors.read(contentsOf: path)
        func invalid(_ problem: String) -> SafetensorsError {
            SafetensorsError(path: path, description: "\(path) \(problem); write it again with npid embed")
        }
        guard contents.metadata["format"] == format else {
            throw invalid("is not an npid embeddings file (metadata format is \(contents.metadata["format"] ?? "missing"), expected \(format))")
        }
        guard let tensor = contents["features"], tensor.dtype == .f32, tensor.shape.count == 2 else {
            throw invalid("has no float32 [N, D] features tensor")
        }
        guard let list = contents.metadata["paths"],
              let paths = try? JSONDecoder().decode([String].self, from: Data(list.utf8)) else {
            throw invalid("has no JSON list of paths in its metadata")
        }
        guard paths.count == tensor.shape[0] else {
            throw invalid("has \(paths.count) paths in its metadata for \(tensor.shape[0]) feature rows")
        }
        guard !paths.isEmpty else {
            throw invalid("contains no images")
        }
        var layer = FeatureLayer.embedding
        if let name = contents.metadata["layer"] {
            guard let named = FeatureLayer(rawValue: name) else {
                throw invalid("names an unknown layer '\(name)' in its metadata")
            }
            layer = named
        }
        let features = try tensor.values(as: Float.self)
        guard features.allSatisfy(\.isFinite) else {
            throw invalid("contains features that are NaN or infinite")
        }
        return EmbeddingFile(features: features, dimension: tensor.shape[1], paths: paths,
                             root: contents.metadata["root"] ?? "", checkpoint: contents.metadata["checkpoint"] ?? "",
                             layer: layer, networkFingerprint: contents.metadata["network_crc32c"])
    }
}

/// The features that `TrainedModel.embed` computed, and the files it left out.
public struct EmbeddedImages {
    /// Row-major [keptIndices.count, width] floats, width = D (or C for `.pooled`).
    public var features: [Float]
    /// Positions in the input paths of the images that have a row, in order.
    public var keptIndices: [Int]
    /// Files that did not decode, left out under `BadImagePolicy.skip`.
    public var badFiles: [BadImageFile]
}

extension TrainedModel {
    /// Computes the features of the image files at `paths`. Files are decoded and embedded
    /// `groupSize` at a time, so only one group of decoded images is in memory at once.
    ///
    /// - Throws: with `BadImagePolicy.fail`, `DataError.badImages` naming every file of the
    ///   first group that contains files that cannot be decoded.
    public func embed(paths: [String], layer: FeatureLayer = .embedding, groupSize: Int = 1024, threads: Int,
                      badImagePolicy: BadImagePolicy = .fail,
                      groupEnded: (Int) -> Void = { _ in }) throws -> EmbeddedImages {
        var embedded = EmbeddedImages(features: [], keptIndices: [], badFiles: [])
        var start = 0
        while start < paths.count {
            let group = Array(paths[start..<min(start + groupSize, paths.count)])
            var images: [RGBImage] = []
            var groupBadFiles: [BadImageFile] = []
            for (offset, decoded) in Self.decode(group, threads: threads).enumerated() {
                switch decoded {
                case .success(let image):
                    images.append(image)
                    embedded.keptIndices.append(start + offset)
                case .failure(let error as DataError):
                    groupBadFiles.append(BadImageFile(path: group[offset], error: error))
                case .failure(let error):
                    throw error
                }
            }
            if badImagePolicy == .fail && !groupBadFiles.isEmpty {
                throw DataError.badImages(files: groupBadFiles)
            }
            embedded.badFiles += groupBadFiles
            if !images.isEmpty {
                let store = ImageStore(images: images, labels: [Int](repeating: 0, count: images.count), classNames: ["unlabelled"])
                embedded.features += try features(of: store, layer: layer).to(device: .cpu).toArray(of: Float.self)
            }
            start += group.count
            groupEnded(start)
        }
        return embedded
    }

    /// Decodes the files on `threads` threads, returning each file's image or error in order.
    private static func decode(_ paths: [String], threads: Int) -> [Result<RGBImage, Error>] {
        let slots = DecodeSlots(count: paths.count)
        let workers = max(1, min(threads, paths.count))
        // Worker w decodes indices w, w + workers, w + 2 · workers and so on, so each slot has one writer.
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            for index in stride(from: worker, to: paths.count, by: workers) {
                slots.store(Result { try ImageDecoder.decode(contentsOf: paths[index]) }, at: index)
            }
        }
        return slots.results()
    }
}

/// One result slot per file. Each slot is written by exactly one decode thread and read only
/// after all threads have finished, so no lock is needed.
private final class DecodeSlots: @unchecked Sendable {
    private let slots: UnsafeMutableBufferPointer<Result<RGBImage, Error>?>

    init(count: Int) {
        slots = .allocate(capacity: count)
        slots.initialize(repeating: nil)
    }

    deinit {
        slots.deinitialize()
        slots.deallocate()
    }

    func store(_ result: Result<RGBImage, Error>, at index: Int) {
        slots[index] = result
    }

    func results() -> [Result<RGBImage, Error>] {
        slots.map { $0! }
    }
}
