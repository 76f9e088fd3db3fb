import Torch

/// Exact top-k search by dot product (cosine similarity for unit-length rows) that never
/// computes the whole query × bank similarity matrix at once.
///
/// Queries are taken `queryBlockSize` rows at a time and the bank `bankBlockSize` rows at a
/// time. Each block's k best candidates are merged into a running top-k per query, so the
/// working memory is about queryBlockSize × (bankBlockSize + 2k) floats whatever Q and N
/// are: 256 MiB for the defaults, against 256 GB for a full 50,000 × 1.28 M matrix.
public struct SimilaritySearch: Sendable {
    /// Query rows per block.
    public var queryBlockSize: Int
    /// Bank rows per block.
    public var bankBlockSize: Int

    public init(queryBlockSize: Int = 1024, bankBlockSize: Int = 65_536) {
        precondition(queryBlockSize >= 1 && bankBlockSize >= 1, "SimilaritySearch block sizes must be positive")
        self.queryBlockSize = queryBlockSize
        self.bankBlockSize = bankBlockSize
    }

    /// Finds the `k` most similar bank rows of every query.
    ///
    /// - Parameters:
    ///   - queries: [Q, D].
    ///   - bank: [N, D] on the same device.
    ///   - k: neighbours per query, capped at N.
    /// - Returns: similarities [Q, k'] sorted in descending order and their bank row indices
    ///   [Q, k'] (int64), k' = min(k, N). Rows with equal similarity may come in any order.
    public func topK(queries: Tensor, bank: Tensor, k: Int) throws -> (values: Tensor, indices: Tensor) {
        precondition(k >= 1, "SimilaritySearch.topK needs k >= 1, got \(k)")
        return try withNoGrad {
            let queryCount = queries.shape[0]
            guard queryCount > queryBlockSize else {
                return try topKOfBlock(queries, bank: bank, k: k)
            }
            var values: [Tensor] = []
            var indices: [Tensor] = []
            var start = 0
            while start < queryCount {
                let length = min(queryBlockSize, queryCount - start)
                let block = try topKOfBlock(queries.narrowed(dim: 0, start: start, length: length), bank: bank, k: k)
                values.append(block.values)
                indices.append(block.indices)
                start += length
            }
            return (try Tensor.cat(values, dim: 0), try Tensor.cat(indices, dim: 0))
        }
    }

    /// Returns the top-k of one block of queries, walking the bank block by block.
    func topKOfBlock(_ queries: Tensor, bank: Tensor, k: Int) throws -> (values: Tensor, indices: Tensor) {
        let bankCount = bank.shape[0]
        let k = min(k, bankCount)
        // Bank row numbers, to turn a block's column indices into bank rows. libtorch's add
        // rejects a floating-point scale on integer tensors, so the offset is a lookup instead.
        let bankRows = try Tensor.arange(bankCount, device: bank.device)
        var best: (values: Tensor, indices: Tensor)?
        var start = 0
        while start < bankCount {
            let length = min(bankBlockSize, bankCount - start)
            let rows = try bank.narrowed(dim: 0, start: start, length: length)
            let similarities = try queries.matmul(rows.t())                          // [q, length]
            var candidates = try similarities.topk(min(k, length), dim: 1)           // [q, ≤k]
            if start > 0 {
                let local = candidates.indices
                candidates.indices = try bankRows.narrowed(dim: 0, start: start, length: length)
                    .indexSelect(dim: 0, index: local.reshaped([-1])).reshaped(local.shape)  // block column → bank row
            }
            if let previous = best {
                best = try merge(previous, candidates, k: k)
            } else {
                best = candidates
            }
            start += length
        }
        return best!
    }

    /// Keeps the k largest of two candidate lists per query: [q, a] and [q, b] → [q, min(k, a + b)].
    private func merge(_ first: (values: Tensor, indices: Tensor), _ second: (values: Tensor, indices: Tensor),
                       k: Int) throws -> (values: Tensor, indices: Tensor) {
        let values = try Tensor.cat([first.values, second.values], dim: 1)
        let indices = try Tensor.cat([first.indices, second.indices], dim: 1)
        let kept = try values.topk(min(k, values.shape[1]), dim: 1)
        return (kept.values, try indices.gather(dim: 1, index: kept.indices))
    }
}
