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

    /// Loads the training split of `dataRoot`, the one the checkpoint trained on.
    static func trainingSplit(of dataRoot: String, model: TrainedModel, recompute: Bool) throws -> SearchGallery {
        let folder = try ImageFolder(split: dataRoot + "/train", limitPerClass: model.configuration.limitPerClass)
        try model.checkClassNames(folder.classNames)
        let train = try ImageStore(folder: folder, threads: ProcessInfo.processInfo.activeProcessorCount)
        return SearchGallery(features: try model.trainingFeatures(of: train, recompute: recompute), layer: .embedding,
                             paths: train.paths, labels: train.labels, classNames: train.classNames,
                             image: { try train[$0] })
    }

    /// Loads the images of an `npid embed` file. Each image's class is the name of its folder,
    /// so a folder laid out as CLASS/*.jpg searches like a training split.
    static func embeddings(at indexPath: String, model: TrainedModel) throws -> SearchGallery {
        let index = try EmbeddingFile.read(contentsOf: indexPath)
        let root = index.root.hasSuffix("/") ? String(index.root.dropLast()) : index.root
        let paths = index.paths.map { root.isEmpty ? $0 : root + "/" + $0 }
        let folders = index.paths.map { URL(fileURLWithPath: $0).deletingLastPathComponent().lastPathComponent }
        let classNames = Array(Set(folders)).sorted()
        let labelOf = Dictionary(uniqueKeysWithValues: classNames.enumerated().map { ($0.element, $0.offset) })
        let rows = try Tensor(index.features, shape: [index.paths.count, index.dimension])
        return SearchGallery(features: try rows.l2Normalized().to(device: model.runtime.device), layer: index.layer,
                             paths: paths, labels: folders.map { labelOf[$0]! }, classNames: classNames,
                             image: { try ImageDecoder.decode(contentsOf: paths[$0]) })
    }

    /// Computes the unit features of `images` in this gallery's layer.
    /// - Throws: `UsageError` when they do not have the gallery's width, as when an index was
    ///   written with another checkpoint.
    func queryFeatures(of images: [RGBImage], model: TrainedModel, source: String) throws -> Tensor {
        let store = ImageStore(images: images, labels: [Int](repeating: 0, count: images.count), classNames: ["unlabelled"])
        let queries = try model.features(of: store, layer: layer).l2Normalized()
        guard queries.shape[1] == features.shape[1] else {
            throw UsageError("\(source) holds \(features.shape[1])-d \(layer.rawValue) features but checkpoint \(model.checkpointPath) gives \(queries.shape[1])-d ones; write it again with npid embed and this checkpoint")
        }
        return queries
    }
}
