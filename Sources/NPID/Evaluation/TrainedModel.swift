import Torch

/// A network restored from a checkpoint, ready to compute features for evaluation and
/// retrieval.
public final class TrainedModel {
    public let checkpoint: Checkpoint
    public let checkpointPath: String
    public let network: ResNet
    public let runtime: RuntimeOptions

    public var configuration: TrainingConfiguration { checkpoint.configuration }

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
        let saved = checkpoint.classNames
        guard saved.isEmpty || saved == data.classNames else {
            throw UsageError("checkpoint \(checkpointPath) was trained on classes \(saved.prefix(5).joined(separator: ", "))\(saved.count > 5 ? ", ..." : "") (\(saved.count) in all), but the data has \(data.classNames.prefix(5).joined(separator: ", "))\(data.classNames.count > 5 ? ", ..." : "") (\(data.classNames.count)); pass the --data the run trained on")
        }
    }

    /// Features [N, D] of every image of `store` with the plain transform, in dataset order.
    public func features(of store: ImageStore) throws -> Tensor {
        let loader = BatchLoader(store: store, transform: .plain(PlainTransform(outputSize: configuration.imageSize)),
                                 batchSize: 256, shuffle: false, seed: configuration.seed, workers: runtime.workers,
                                 layout: runtime.channelsLast ? .nhwc : .nchw)
        return try extractFeatures(model: network, loader: loader, count: store.count, device: runtime.device,
                                   channelsLast: runtime.channelsLast)
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
        return try checkpoint.memoryBank.tensor().to(device: runtime.device)
    }

    /// Weighted kNN accuracy of `data.test` against the training features.
    public func evaluate(data: TrainingData, recompute: Bool, neighborCount: Int) throws -> KNNAccuracy {
        try checkClasses(of: data)
        let bank = try trainingFeatures(of: data.train, recompute: recompute)
        let queries = try features(of: data.test)
        let labels = try Tensor(data.train.labels.map(Int64.init)).to(device: runtime.device)
        let knn = WeightedKNN(neighborCount: neighborCount, temperature: configuration.temperature)
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
        let (values, indices) = try queries.matmul(bank.t()).topk(k, dim: 1)
        let similarities = try values.to(device: .cpu).toArray(of: Float.self)
        let rows = try indices.to(device: .cpu).toArray(of: Int64.self)
        return (0..<queries.shape[0]).map { q in
            (0..<k).map { j in (Int(rows[q * k + j]), similarities[q * k + j]) }
        }
    }
}
