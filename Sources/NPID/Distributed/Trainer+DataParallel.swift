import Torch

// The data-parallel side of `Trainer`: each rank trains on its slice of every global batch,
// gradients and the loss are averaged across ranks, and every rank applies the same
// memory-bank update from the gathered features, so all ranks keep identical state.

extension Trainer {
    /// Ranks of the run; 1 when this process trains alone.
    var worldSize: Int { distributed?.worldSize ?? 1 }

    /// Makes this rank's state equal to rank 0's and connects the loss and the batch norms
    /// to the process group.
    func joinDataParallelRun(_ run: DistributedRun) throws {
        let shard = NoiseShard(index: run.rank, count: run.worldSize)
        if let nce = loss as? NCELoss {
            nce.noiseShard = shard
            // Equal slices make the mean of the ranks' estimates the global batch's estimate;
            // rank 0's copy is broadcast so that every rank holds the same bits.
            nce.combineEstimate = { estimate in
                try run.perform("the NCE normalisation-constant exchange") {
                    let value = try Tensor([estimate])
                    try run.group.allReduceMean([value])
                    try run.group.broadcast(value, from: 0)
                    return try value.item()
                }
            }
        } else if let softmax = loss as? SoftmaxCrossEntropyLoss {
            softmax.noiseShard = shard
        }
        if configuration.synchronizeBatchNorm {
            model.synchronizeBatchNorm(over: run.group)
        }

        // Every rank built the same state from the same seed or checkpoint; the broadcast
        // guards against a rank that read a different file or runs a different build.
        try run.perform("the initial state broadcast") {
            for entry in model.state {
                try run.group.broadcast(entry.tensor, from: 0)
            }
            for buffer in momentumBuffers.compactMap({ $0 }) {
                try run.group.broadcast(buffer, from: 0)
            }
            try run.group.broadcast(bank.features, from: 0)
        }
    }

    /// Returns the batches this process trains on in `epoch`, from sample `start` of the
    /// epoch's order on, and the global plan when this is a data-parallel run.
    func epochBatches(loader: BatchLoader, epoch: Int, startingAtSample start: Int)
        -> (batches: LoaderEpoch, plan: GlobalBatchPlan?) {
        guard let distributed else {
            return (loader.epoch(epoch, startingAt: firstBatch(startingAtSample: start)), nil)
        }
        let plan = GlobalBatchPlan(order: loader.order(epoch: epoch), start: start,
                                   batchSize: configuration.batchSize, worldSize: distributed.worldSize)
        return (loader.epoch(epoch, order: plan.indices(rank: distributed.rank)), plan)
    }

    /// The batch of a single process's epoch that starts at sample `start`: every batch but the
    /// last is full, so a run stopped after the short last batch has seen all images and skips them all.
    func firstBatch(startingAtSample start: Int) -> Int {
        (start + configuration.batchSize - 1) / configuration.batchSize
    }

    /// One SGD step of the global batch that `batch` is this rank's slice of, followed by the
    /// memory-bank update with every rank's features; returns the global batch's mean loss.
    func dataParallelStep(_ batch: Batch, learningRate: Double, parameters: [Tensor], run: DistributedRun,
                          place: String) throws -> Double {
        let images = try batch.imageTensor(device: runtime.device, channelsLast: runtime.channelsLast)
        let indices = try batch.indexTensor(device: runtime.device)

        // Synchronised batch norm and NCE's Z run collectives inside forward and backward.
        let (features, value) = try run.perform("the forward and backward pass of \(place)") {
            try lossAndGradients(images: images, indices: indices, parameters: parameters)
        }

        // The loss is a mean over this rank's slice and the slices are equal, so the mean of
        // the ranks' gradients is the gradient of the global batch's mean loss.
        let lossCopy = try value.detached().reshaped([1]).clone()
        let gradients = try parameters.compactMap { try $0.grad }
        try run.perform("the gradient all-reduce of \(place)") {
            try run.group.allReduceMean(gradients + [lossCopy])
        }
        try sgdStep(parameters: parameters, momentumBuffers: &momentumBuffers, learningRate: learningRate,
                    momentum: configuration.sgdMomentum, weightDecay: configuration.weightDecay)

        // Rank order is global batch order, so every rank applies one process's update.
        let (allFeatures, allIndices) = try run.perform("the memory-bank all-gather of \(place)") {
            let local = try bank.matchingPrecision(features.detached()).contiguous()
            return (try run.group.allGather(local), try run.group.allGather(indices))
        }
        try bank.update(indices: allIndices, with: allFeatures)
        return try lossCopy.item()
    }

    /// Returns `shouldStop()`, agreed across ranks in a data-parallel run: true on every rank
    /// when any rank's caller asked to stop.
    func stopRequested(_ shouldStop: () -> Bool) throws -> Bool {
        guard let distributed else {
            return shouldStop()
        }
        return try distributed.anyRank(shouldStop())
    }

    /// Copies rank 0's batch-norm running statistics to every rank, so that evaluation and the
    /// checkpoint see one network. Without synchronised batch norm each rank's statistics
    /// follow its own slices, as with PyTorch's DistributedDataParallel.
    func shareBatchNormStatistics() throws {
        guard let distributed else {
            return
        }
        try distributed.perform("the batch-norm statistics broadcast") {
            for entry in model.state where !entry.isParameter {
                try distributed.group.broadcast(entry.tensor, from: 0)
            }
        }
    }

    /// Returns the features of every image of `store` with the plain transform, rows in dataset order.
    /// In a data-parallel run each rank reads only its slice, and a sum all-reduce fills in the
    /// other ranks' rows (zero on this rank), so each rank reads 1/N of the images.
    func sharedPlainFeatures(of store: ImageStore) throws -> Tensor {
        let loader = BatchLoader(store: store, transform: .plain(PlainTransform(outputSize: configuration.imageSize)),
                                 batchSize: 256, shuffle: false, seed: configuration.seed, workers: runtime.workers,
                                 layout: runtime.channelsLast ? .nhwc : .nchw)
        let slice = distributed.map { Self.evaluationSlice(count: store.count, rank: $0.rank, worldSize: $0.worldSize) }
        let features = try extractFeatures(model: model, loader: loader, count: store.count, device: runtime.device,
                                           channelsLast: runtime.channelsLast, precision: runtime.effectivePrecision,
                                           indices: slice.map(Array.init))
        if let distributed {
            try distributed.perform("the evaluation features all-reduce") {
                try distributed.group.allReduceSum([features])
            }
        }
        return features
    }

    /// Returns the contiguous dataset rows whose features `rank` extracts for an evaluation.
    /// The slices of all ranks cover 0..<count once and differ in size by at most one.
    static func evaluationSlice(count: Int, rank: Int, worldSize: Int) -> Range<Int> {
        (count * rank / worldSize)..<(count * (rank + 1) / worldSize)
    }
}
