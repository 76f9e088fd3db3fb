import Torch

/// A network restored from a checkpoint, ready to compute features for evaluation and
/// retrieval.
public final class TrainedModel {
    public let checkpoint: Checkpoint
    public let checkpointPath: String
    public let network: ResNet
    public let runtime: RuntimeOptions

    public var configuration: TrainingConfiguration { checkpoint.configuration }

    /// CRC-32C of the network's state (names, shapes and bytes, in name order) as 8 hex
    /// digits. Features computed by two checkpoints compare only when these agree.
    public var networkFingerprint: String {
        var crc = CRC32C()
        for name in checkpoint.modelState.keys.sorted() {
            let tensor = checkpoint.modelState[name]!
            crc.update(name + ":" + tensor.shape.map(String.init).joined(separator: ",") + ":")
            crc.update(tensor.bytes)
        }
        let digits = String(crc.value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    public init(checkpointPath: String, runtime: RuntimeOptions) throws {
        checkpoint = try Checkpoint.read(contentsOf: checkpointPath)
        self.checkpointPath = checkpointPath
        self.runtime = runtime
        let placement = ParameterPlacement(device: runtime.device, channelsLast: runtime.channelsLast)
        network = try ResNet(checkpoint.configuration.model, placement: placement)
        try network.load(checkpoint.modelState, from: checkpointPath)
    }

    /// Checks that `data` has the classes the run trained on, so that kNN votes compare
    /// the same labels.
    public func checkClasses(of data: TrainingData) throws {
        try checkClassNames(data.classNames)
    }

    /// Checks that `classNames` are the classes the run trained on.
    public func checkClassNames(_ classNames: [String]) throws {
        try checkpoint.checkClassNames(classNames, path: checkpointPath)
    }

    /// Features [N, D] of every image of `store` with the plain transform, in dataset order
    /// ([N, C] with `layer: .pooled`).
    /// - Throws: `UnusableFeaturesError` naming the checkpoint when the network has diverged.
    public func features(of store: ImageStore, layer: FeatureLayer = .embedding) throws -> Tensor {
        do {
            return try plainFeatures(model: network, store: store, imageSize: configuration.imageSize,
                                     runtime: runtime, layer: layer)
        } catch var error as UnusableFeaturesError {
            error.source = "checkpoint \(checkpointPath)"
            error.advice = "no evaluation, search or embedding can use it; train again with a lower --lr, or use an earlier checkpoint of the run"
            throw error
        }
    }

    /// Features [N, D] of images of any size, in order, with the plain transform (shorter
    /// side resized to the training image size, then centre-cropped).
    public func features(of images: [RGBImage]) throws -> Tensor {
        // The loader needs labels; these images have none, so all get class 0 of a single class.
        let store = ImageStore(images: images, labels: [Int](repeating: 0, count: images.count), classNames: ["unlabelled"])
        return try features(of: store)
    }

    /// Returns the reference features of the training split: the saved memory bank, or
    /// features recomputed with the plain transform. Rows follow dataset order either way.
    public func trainingFeatures(of store: ImageStore, recompute: Bool) throws -> Tensor {
        if recompute {
            return try features(of: store)
        }
        let rows = checkpoint.memoryBank.shape[0]
        guard rows == store.count else {
            throw UsageError("checkpoint \(checkpointPath) has a memory bank of \(rows) rows but the training split has \(store.count) images; use the same --data and limits as the training run, or pass --recompute")
        }
        try checkpoint.checkTrainingImages(store, path: checkpointPath,
                                           advice: "pass the data folder the run trained on, or --recompute to compute the features of these images")
        return try checkpoint.memoryBank.tensor().to(device: runtime.device)
    }

    /// Weighted kNN accuracy of `data.test` against the training features, voting with
    /// σ = `temperature`, or the training τ when nil.
    public func evaluate(data: TrainingData, recompute: Bool, neighborCount: Int,
                         temperature: Double? = nil) throws -> KNNAccuracy {
        try checkClasses(of: data)
        let bank = try trainingFeatures(of: data.train, recompute: recompute)
        let queries = try features(of: data.test)
        let labels = try Tensor(data.train.labels.map(Int64.init)).to(device: runtime.device)
        let knn = WeightedKNN(neighborCount: neighborCount, temperature: temperature ?? configuration.temperature)
        return try knn.evaluate(queries: queries, queryLabels: data.test.labels, bank: bank, bankLabels: labels,
                                classCount: data.classNames.count)
    }
}

/// Finds the `count` most similar bank rows for each query, by cosine similarity.
///
/// - Parameters:
///   - queries: [Q, D], unit length.
///   - bank: [N, D], unit length.
/// - Returns: per query, the row indices and similarities, most similar first.
public func nearestNeighbors(queries: Tensor, bank: Tensor, count: Int) throws -> [[(index: Int, similarity: Float)]] {
    try withNoGrad {
        let k = min(count, bank.shape[0])
        let (values, indices) = try SimilaritySearch().topK(queries: queries, bank: bank, k: k)
        let similarities = try values.to(device: .cpu).toArray(of: Float.self)
        let rows = try indices.to(device: .cpu).toArray(of: Int64.self)
        return (0..<queries.shape[0]).map { q in
            (0..<k).map { j in (Int(rows[q * k + j]), similarities[q * k + j]) }
        }
    }
}
