import Foundation
import NPID
import Torch

/// The images `npid search` ranks: the training split of a dataset, with its memory bank or
/// recomputed features, or any folder that `npid embed` wrote an embeddings file for.
struct SearchGallery {
    /// Unit rows [N, D], one per image, on the model's device.
    let features: Tensor
    /// The layer that `features` come from; queries are embedded with the same one.
    let layer: FeatureLayer
    let paths: [String]
    let labels: [Int]
    let classNames: [String]
    /// Decodes image `index` for the picture.
    let image: (Int) throws -> RGBImage
    /// The flag and value that named the gallery, for messages.
    let source: String

    /// Loads the training split folder `splitPath`, the one the checkpoint trained on, leaving
    /// out or rejecting image files that do not decode as `policy` selects. Features of the
    /// pooled layer are always recomputed, because the memory bank stores embeddings only.
    /// - Parameter source: the flag and value that named the split, for messages.
    static func trainingSplit(at splitPath: String, source: String, model: TrainedModel, recompute: Bool,
                              layer: FeatureLayer = .embedding, policy: BadImagePolicy) throws -> SearchGallery {
        let folder = try ImageFolder(split: splitPath, limitPerClass: model.configuration.limitPerClass)
        try model.checkClassNames(folder.classNames)
        let scan = ImageFolderScan(folder: folder, options: ImageScanOptions(threads: ProcessInfo.processInfo.activeProcessorCount))
        if policy == .fail && !scan.badFiles.isEmpty {
            throw DataError.badImages(files: scan.badFiles)
        }
        DataOptions.logSkipped(scan.badFiles)
        DataOptions.logUnread(folder.unreadFolders)
        let train = try scan.makeStore()
        let features = layer == .embedding ? try model.trainingFeatures(of: train, recompute: recompute)
            : try model.features(of: train, layer: layer).l2Normalized()
        return SearchGallery(features: features, layer: layer,
                             paths: train.paths, labels: train.labels, classNames: train.classNames,
                             image: { try train[$0] }, source: source)
    }

    /// Loads the images of an `npid embed` file. Each image's class is the name of its folder,
    /// so a folder laid out as CLASS/*.jpg searches like a training split. Images at the top
    /// of the embedded folder have no class, named "".
    /// - Throws: `UsageError` when the file was written with another network.
    static func embeddings(at indexPath: String, model: TrainedModel) throws -> SearchGallery {
        let index = try EmbeddingFile.read(contentsOf: indexPath)
        if let fingerprint = index.networkFingerprint {
            guard fingerprint == model.networkFingerprint else {
                throw UsageError("--index \(indexPath) was written with another network than checkpoint \(model.checkpointPath) (another run, or another epoch of this one); write it again with npid embed and this checkpoint")
            }
        } else {
            Console.log("warning: --index \(indexPath) records no network fingerprint, so npid cannot check that the checkpoint wrote it; write it again with npid embed to add one")
        }

        let root = index.root.hasSuffix("/") ? String(index.root.dropLast()) : index.root
        let paths = index.paths.map { root.isEmpty ? $0 : root + "/" + $0 }
        let folders = index.paths.map { path in
            path.contains("/") ? URL(fileURLWithPath: path).deletingLastPathComponent().lastPathComponent : ""
        }
        let classNames = Array(Set(folders)).sorted()
        let labelOf = Dictionary(uniqueKeysWithValues: classNames.enumerated().map { ($0.element, $0.offset) })
        let rows = try Tensor(index.features, shape: [index.paths.count, index.dimension])
        let image = { (row: Int) throws -> RGBImage in
            do {
                return try ImageDecoder.decode(contentsOf: paths[row])
            } catch {
                throw IndexImageError(path: paths[row], indexPath: indexPath, cause: error)
            }
        }
        return SearchGallery(features: try rows.l2Normalized().to(device: model.runtime.device), layer: index.layer,
                             paths: paths, labels: folders.map { labelOf[$0]! }, classNames: classNames, image: image,
                             source: "--index \(indexPath)")
    }

    /// Returns the class name to print for `label`: "-" for images without a class.
    func displayName(_ label: Int) -> String {
        classNames[label].isEmpty ? "-" : classNames[label]
    }

    /// Returns, for each query, the gallery rows that are the same file as the query (none for
    /// most queries). Files are compared by device and inode, so a symbolic link or another
    /// spelling of the path matches its file, while names that differ only in Unicode
    /// normal form stay two files.
    func rows(of queryPaths: [String]) -> [[Int]] {
        let queryFiles = queryPaths.map(FileIdentity.init(path:))
        let queried = Set(queryFiles.compactMap { $0 })
        var rowsOf: [FileIdentity: [Int]] = [:]
        if !queried.isEmpty {
            for (row, path) in paths.enumerated() {
                if let file = FileIdentity(path: path), queried.contains(file) {
                    rowsOf[file, default: []].append(row)
                }
            }
        }
        return queryFiles.map { file in file.flatMap { rowsOf[$0] } ?? [] }
    }

    /// Computes the unit features of `images` in this gallery's layer.
    /// - Throws: `UsageError` when they do not have the gallery's width, as when an index was
    ///   written with another checkpoint.
    func queryFeatures(of images: [RGBImage], model: TrainedModel) throws -> Tensor {
        let store = ImageStore(images: images, labels: [Int](repeating: 0, count: images.count), classNames: ["unlabelled"])
        let queries = try model.features(of: store, layer: layer).l2Normalized()
        guard queries.shape[1] == features.shape[1] else {
            throw UsageError("\(source) contains \(features.shape[1])-d \(layer.rawValue) features but checkpoint \(model.checkpointPath) gives \(queries.shape[1])-d ones; write it again with npid embed and this checkpoint")
        }
        return queries
    }
}

/// An image listed in an embeddings file that no longer decodes.
struct IndexImageError: Error, CustomStringConvertible {
    let path: String
    let indexPath: String
    let cause: Error

    var description: String {
        "image \(path) of --index \(indexPath) cannot be read (\(cause)); write the index again with npid embed if the folder changed"
    }
}

/// A query image that cannot be decoded. The decoder's message names the file but not
/// its role, and the fix is to pass other queries rather than to change a dataset.
struct QueryImageError: Error, CustomStringConvertible {
    let path: String
    let cause: DataError

    var description: String {
        let advice: String
        switch cause {
        case .unsupportedFormat: advice = "pass JPEG or PNG files as queries"
        case .imageTooLarge: advice = "pass a smaller copy of it"
        default: advice = "replace the file or pass another query"
        }
        return "query image \(path) cannot be read (\(cause.reason)); \(advice)"
    }
}

/// The identity of a file: the device and inode that `stat` reports after following
/// symbolic links.
struct FileIdentity: Hashable {
    let device: UInt64
    let inode: UInt64

    /// Reads the identity of the file at `path`, or returns nil when it cannot be read.
    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            return nil
        }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }
}
