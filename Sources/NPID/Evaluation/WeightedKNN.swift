import Torch

/// Top-1 and top-5 accuracy of a kNN classifier, in percent, with per-class top-1.
public struct KNNAccuracy: Sendable, Equatable {
    public var top1: Double
    public var top5: Double
    /// Top-1 accuracy of each class's queries, in percent; nil for a class with no query.
    public var perClassTop1: [Double?]
    public var queryCount: Int
    /// Query counts [C][C]: row = true class, column = top-1 predicted class.
    public var confusionMatrix: [[Int]] = []
}

/// Weighted k-nearest-neighbour classification (Wu et al., CVPR 2018, section 4.1).
///
/// Each query's k most similar bank rows (cosine similarity, rows and queries unit
/// length) vote for their class with weight exp(s / σ); the class with the largest
/// sum wins. k is capped at the bank size N.
///
/// Memory is bounded in both directions: queries are scored `chunkSize` at a time, and each
/// chunk walks the bank `bankChunkSize` rows at a time (see `SimilaritySearch`), so at most
/// chunkSize × bankChunkSize similarities exist at once.
public struct WeightedKNN: Sendable {
    public var neighborCount: Int
    /// σ in exp(s / σ); the training temperature τ by convention.
    public var temperature: Double
    /// Queries per similarity block.
    public var chunkSize: Int
    /// Bank rows per similarity block.
    public var bankChunkSize: Int

    public init(neighborCount: Int = 200, temperature: Double, chunkSize: Int = 1024, bankChunkSize: Int = 65_536) {
        self.neighborCount = neighborCount
        self.temperature = temperature
        self.chunkSize = chunkSize
        self.bankChunkSize = bankChunkSize
    }

    /// Class scores [Q, C] for queries [Q, D] against a bank [N, D] whose rows have
    /// labels `bankLabels` [N] (int64, same device).
    ///
    /// With `relativeToNearest`, each query's weights are exp((s − s₁) / σ), with s₁ its
    /// nearest row's similarity: the same vote divided by exp(s₁ / σ), which keeps the
    /// ranking of classes but cannot overflow. Plain exp(s / σ) exceeds float32 once
    /// s / σ > 88, for example σ < 0.0113 at s = 1.
    public func classScores(queries: Tensor, bank: Tensor, bankLabels: Tensor, classCount: Int,
                            relativeToNearest: Bool = false) throws -> Tensor {
        try withNoGrad {
            let search = SimilaritySearch(queryBlockSize: chunkSize, bankBlockSize: bankChunkSize)
            let (values, neighbors) = try search.topK(queries: queries, bank: bank, k: neighborCount)  // [Q, k], most similar first
            let neighborLabels = try bankLabels.indexSelect(dim: 0, index: neighbors.reshaped([-1]))
                .reshaped(neighbors.shape)                                        // [Q, k]
            let exponents = relativeToNearest ? try values - values.narrowed(dim: 1, start: 0, length: 1) : values
            let weights = try (exponents / temperature).exp()
            let empty = try Tensor.zeros([queries.shape[0], classCount], dtype: weights.dtype, device: weights.device)
            return try empty.scatterAdd(dim: 1, index: neighborLabels, source: weights)
        }
    }

    /// Accuracy of the weighted vote for `queries` [Q, D] with true labels `queryLabels`.
    public func evaluate(queries: Tensor, queryLabels: [Int], bank: Tensor, bankLabels: Tensor,
                         classCount: Int) throws -> KNNAccuracy {
        precondition(queries.shape[0] == queryLabels.count, "one label per query")
        var top1Hits = 0
        var top5Hits = 0
        var classHits = [Int](repeating: 0, count: classCount)
        var classTotals = [Int](repeating: 0, count: classCount)
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classCount), count: classCount)
        let ranked = min(5, classCount)

        var start = 0
        while start < queryLabels.count {
            let length = min(chunkSize, queryLabels.count - start)
            let block = try queries.narrowed(dim: 0, start: start, length: length)
            let scores = try classScores(queries: block, bank: bank, bankLabels: bankLabels, classCount: classCount,
                                         relativeToNearest: true)
            let predictions = try scores.topk(ranked, dim: 1).indices.to(device: .cpu).toArray(of: Int64.self)
            for row in 0..<length {
                let truth = queryLabels[start + row]
                let guesses = predictions[(row * ranked)..<((row + 1) * ranked)]
                classTotals[truth] += 1
                confusion[truth][Int(guesses.first!)] += 1
                if guesses.first == Int64(truth) {
                    top1Hits += 1
                    classHits[truth] += 1
                }
                if guesses.contains(Int64(truth)) {
                    top5Hits += 1
                }
            }
            start += length
        }

        let total = Double(max(queryLabels.count, 1))
        let perClass = zip(classHits, classTotals).map { hits, count in
            count > 0 ? 100 * Double(hits) / Double(count) : nil
        }
        return KNNAccuracy(top1: 100 * Double(top1Hits) / total, top5: 100 * Double(top5Hits) / total,
                           perClassTop1: perClass, queryCount: queryLabels.count, confusionMatrix: confusion)
    }
}
