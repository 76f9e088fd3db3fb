/// The samples each rank takes in one epoch of a data-parallel run.
///
/// Every rank shuffles the same permutation from the run seed. Global step s covers
/// positions [start + s·W·B, start + (s+1)·W·B) of it, and rank r takes the r-th slice of B,
/// so W ranks with batch B see exactly the batches that one process with batch W·B sees.
/// The last global batch is filled up by wrapping to the start of the permutation, so every
/// rank takes the same number of full batches.
struct GlobalBatchPlan: Equatable {
    let order: [Int]
    /// Samples of `order` consumed before this plan starts (by a resumed run).
    let start: Int
    let batchSize: Int
    let worldSize: Int

    var globalBatchSize: Int { batchSize * worldSize }

    /// Global steps from `start` to the end of the epoch.
    var stepCount: Int {
        let remaining = max(order.count - start, 0)
        return (remaining + globalBatchSize - 1) / globalBatchSize
    }

    /// Dataset indices of rank `rank`'s batches, concatenated in step order.
    func indices(rank: Int) -> [Int] {
        var result: [Int] = []
        result.reserveCapacity(stepCount * batchSize)
        for step in 0..<stepCount {
            let first = start + step * globalBatchSize + rank * batchSize
            for position in first..<(first + batchSize) {
                result.append(order[position % order.count])
            }
        }
        return result
    }

    /// Samples of the permutation that are real (not padding) in global step `step`.
    func realSampleCount(step: Int) -> Int {
        min(globalBatchSize, order.count - start - step * globalBatchSize)
    }
}
