import Foundation
import Torch

/// A report from a running training loop. The library never prints, so the caller
/// decides how to show these.
public enum TrainingEvent {
    /// A note worth a log line (data sizes, Z estimated, resume point).
    case message(String)
    case step(StepProgress)
    case untrainedAccuracy(KNNAccuracy)
    case epochFinished(EpochMetrics)
}

public struct StepProgress: Sendable {
    public var epoch: Int
    public var epochs: Int
    public var step: Int
    public var steps: Int
    public var loss: Double
    public var imagesPerSecond: Double
    public var elapsed: Double
}

/// The final figures of a run.
public struct TrainingResult: Sendable {
    public var bankAccuracy: KNNAccuracy
    public var recomputedAccuracy: KNNAccuracy
    public var untrainedAccuracy: KNNAccuracy?
    public var checkpointPath: String
}

/// A training run stopped because a number went bad, naming where.
public struct NonFiniteLossError: Error, CustomStringConvertible {
    public let epoch: Int
    public let step: Int
    public let value: Double
    /// The run's latest checkpoint, written before the loss went bad; nil when none was written.
    public var checkpointPath: String?

    public var description: String {
        let kept = checkpointPath.map { "the last good checkpoint \($0) is kept" } ?? "no checkpoint had been written yet"
        return "training stopped: the loss became \(value.isNaN ? "NaN" : "\(value)") at epoch \(epoch + 1), step \(step + 1); \(kept) (try a lower --lr or a larger --nce-t)"
    }
}

/// Trains a ResNet by non-parametric instance discrimination (Wu et al., CVPR 2018).
///
/// Each step compares features of augmented images with a memory bank, takes an SGD
/// step on NCE or the full softmax, and moves the batch's bank rows toward the new
/// features. Every epoch ends with a weighted kNN on the test split and a checkpoint.
public final class Trainer {
    public let configuration: TrainingConfiguration
    public let runtime: RuntimeOptions
    public let data: TrainingData
    public let runDirectory: String

    let model: ResNet
    let bank: MemoryBank
    let loss: InstanceLoss
    let proximal: ProximalRegularization?
    /// The source of every random draw of the run (weights, bank, noise rows), so that a
    /// run repeats exactly whatever else in the process draws from libtorch's default
    /// generator. Augmentation has its own seeded streams (`SampleRandom`).
    let random: Generator
    var momentumBuffers: [Tensor?]
    var epochsDone = 0
    var stepsDone = 0
    /// Steps taken in epoch `epochsDone`, and their summed per-image loss and image count.
    var partialEpoch = PartialEpoch()
    /// The position of the latest checkpoint written or restored; nil before the first.
    var savedPosition: TrainingPosition?
    let trainLabels: Tensor
    let checkpointFiles: CheckpointFiles
    /// `TrainingImageList`'s fingerprint of the training split, written into every checkpoint.
    /// Computed once, because it reads the size of every image file.
    lazy var trainingImagesFingerprint = TrainingImageList.fingerprint(of: data.train)
    /// This process's place in a data-parallel run; nil when it trains alone.
    let distributed: DistributedRun?
    /// Only this process writes into the run folder: rank 0, or a process training alone.
    var writesRunFolder: Bool { distributed?.isLeader ?? true }
    /// The memory-bank kNN of the last finished epoch, with per-class figures and confusion matrix.
    public private(set) var lastAccuracy: KNNAccuracy?

    public var checkpointPath: String { checkpointFiles.latestPath }
    /// Whether the run has a checkpoint that --resume can continue, either one this run saved
    /// or the one it resumed from. On ranks other than 0 it follows rank 0's saves.
    public var hasCheckpoint: Bool { savedPosition != nil }
    public var metricsPath: String { runDirectory + "/metrics.jsonl" }

    /// Sets up a new run, or continues `resume` when given. With `distributed`, this process is
    /// one rank of a data-parallel run, `configuration.batchSize` is its share of each global
    /// batch, and every rank must pass the same configuration, data and checkpoint.
    public init(configuration: TrainingConfiguration, runtime: RuntimeOptions, data: TrainingData,
                runDirectory: String, resume: Checkpoint? = nil, resumePath: String? = nil,
                distributed: DistributedRun? = nil) throws {
        try configuration.validate()
        guard runtime.keepCheckpoints >= 1 else {
            throw UsageError("--keep-checkpoints must be at least 1, got \(runtime.keepCheckpoints)")
        }
        let runtime = runtime.adjustedForTraining(configuration.model)
        self.configuration = configuration
        self.runtime = runtime
        self.data = data
        self.runDirectory = runDirectory
        self.distributed = distributed
        checkpointFiles = CheckpointFiles(runDirectory: runDirectory, keepCount: runtime.keepCheckpoints)

        random = try Generator(seed: configuration.seed)
        let placement = ParameterPlacement(device: runtime.device, channelsLast: runtime.channelsLast, generator: random)
        model = try ResNet(configuration.model, placement: placement)
        bank = try MemoryBank(count: data.train.count, dimension: configuration.model.featureDimension,
                              momentum: configuration.bankMomentum, device: runtime.device, generator: random)
        loss = configuration.makeLoss(generator: random)
        proximal = configuration.proximalRegularization
        momentumBuffers = Array(repeating: nil, count: model.parameters.count)
        trainLabels = try Tensor(data.train.labels.map(Int64.init)).to(device: runtime.device)

        if let resume {
            try restore(resume, path: resumePath ?? checkpointPath)
            try checkRestoredNetwork(path: resumePath ?? checkpointPath)
        }
        if let distributed {
            try joinDataParallelRun(distributed)
        }
    }

    /// Trains until `configuration.epochs`, then evaluates with the memory bank and with
    /// recomputed features.
    ///
    /// `shouldStop` is polled before every step and before each final evaluation. When it
    /// returns true, the run saves a checkpoint of the current state, unless the latest one
    /// already contains it, and throws `TrainingInterrupted`. Resuming from that checkpoint
    /// gives the same result as a run that was never stopped.
    public func run(shouldStop: () -> Bool = { false }, events: (TrainingEvent) -> Void) throws -> TrainingResult {
        let metrics = MetricsLog(path: metricsPath)
        if writesRunFolder {
            try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
            let abandoned = AtomicFile.removeAbandonedTemporaryFiles(in: runDirectory)
            if !abandoned.isEmpty {
                events(.message("removed \(counted(abandoned.count, "unfinished temporary file")) that an interrupted save left in \(runDirectory): \(abandoned.joined(separator: ", "))"))
            }
            try writeConfiguration()
            try metrics.truncate(afterEpoch: epochsDone)
        }

        let trainLoader = BatchLoader(store: data.train,
                                      transform: .train(TrainAugmentation(outputSize: configuration.imageSize)),
                                      batchSize: configuration.batchSize, shuffle: true, seed: configuration.seed,
                                      workers: runtime.workers, layout: runtime.channelsLast ? .nhwc : .nchw)
        let stepsPerEpoch = GlobalBatchPlan(order: Array(0..<data.train.count), start: 0,
                                            batchSize: configuration.batchSize, worldSize: worldSize).stepCount
        let threads = Torch.threadCount == 1 ? "1 thread" : "\(Torch.threadCount) threads"
        var place = "\(counted(stepsPerEpoch, "step")) per epoch on \(runtime.device) with \(threads)"
        if worldSize > 1 {
            place = "\(counted(stepsPerEpoch, "step")) per epoch of \(worldSize) × \(configuration.batchSize) images on \(worldSize) ranks, each on \(runtime.device) with \(threads)"
        }
        events(.message("training on \(data.train.count) images of \(data.classNames.count) classes, testing on \(data.test.count); \(place)"))
        if configuration.negativeCount >= data.train.count {
            events(.message("warning: --nce-k \(configuration.negativeCount) is not smaller than the \(data.train.count) training images, so noise samples repeat; the loss can then climb and training diverge, so prefer --nce-k 0 (full softmax) here"))
        }

        var untrained: KNNAccuracy?
        if runtime.evaluateUntrained && position == TrainingPosition(epochsDone: 0, stepInEpoch: 0) {
            let accuracy = try evaluate(recompute: true)
            untrained = accuracy
            events(.untrainedAccuracy(accuracy))
        }

        while epochsDone < configuration.epochs {
            let epochMetrics = try trainEpoch(loader: trainLoader, shouldStop: shouldStop, events: events)
            // The record goes first: a crash between the two writes then repeats the epoch on
            // resume, and truncating the log drops its record, instead of leaving it unrecorded.
            if writesRunFolder {
                try metrics.append(epochMetrics)
            }
            try saveCheckpoint(events: events)
            events(.epochFinished(epochMetrics))
        }

        try stopIfRequested(shouldStop, stepsPerEpoch: stepsPerEpoch, events: events)
        let bankAccuracy = try evaluate(recompute: false)
        try stopIfRequested(shouldStop, stepsPerEpoch: stepsPerEpoch, events: events)
        let recomputed = try evaluate(recompute: true)
        return TrainingResult(bankAccuracy: bankAccuracy, recomputedAccuracy: recomputed,
                              untrainedAccuracy: untrained, checkpointPath: checkpointPath)
    }

    /// Runs the rest of the current epoch's pass over the training set and a kNN evaluation,
    /// and counts the epoch as done. The caller records the metrics and saves the checkpoint.
    func trainEpoch(loader: BatchLoader, shouldStop: () -> Bool, events: (TrainingEvent) -> Void) throws -> EpochMetrics {
        let epoch = epochsDone
        let learningRate = configuration.schedule.learningRate(base: configuration.learningRate, epoch: epoch,
                                                               epochs: configuration.epochs)
        let parameters = model.parameters
        let start = Date()
        // A resumed epoch continues the loss sum of the steps taken before the stop.
        let firstStep = partialEpoch.stepCount
        var lossSum = partialEpoch.lossSum
        var seen = partialEpoch.imageCount
        var seenHere = 0

        let (batches, plan) = epochBatches(loader: loader, epoch: epoch, startingAtSample: seen)
        let stepCount = plan.map { firstStep + $0.stepCount } ?? loader.batchCount
        var step = plan == nil ? firstBatch(startingAtSample: seen) : firstStep
        var planStep = 0
        while let batch = try batches.nextBatch() {
            defer {
                step += 1
                planStep += 1
            }
            try stopIfRequested(shouldStop, stepsPerEpoch: stepCount, events: events)
            var lossValue: Double
            var imageCount = batch.count
            if let distributed, let plan {
                lossValue = try dataParallelStep(batch, learningRate: learningRate, parameters: parameters,
                                                 run: distributed, place: "epoch \(epoch + 1), step \(step + 1)")
                imageCount = plan.realSampleCount(step: planStep)
            } else {
                lossValue = try trainStep(batch, learningRate: learningRate, parameters: parameters)
            }
            guard lossValue.isFinite else {
                throw NonFiniteLossError(epoch: epoch, step: step, value: lossValue,
                                         checkpointPath: savedPosition == nil ? nil : checkpointPath)
            }
            lossSum += lossValue * Double(imageCount)
            seen += imageCount
            seenHere += imageCount
            stepsDone += 1
            partialEpoch = PartialEpoch(stepCount: step + 1, lossSum: lossSum, imageCount: seen)
            if step == 0 && epoch == 0, let nce = loss as? NCELoss, let z = nce.normalizationConstant {
                var note = "NCE normalisation constant Z estimated from the first batch: \(z)"
                if case .movingAverage(let rate) = nce.normalizationUpdate {
                    note += "; it follows a moving average with rate \(rate) from here on"
                }
                events(.message(note))
            }
            let elapsed = Date().timeIntervalSince(start)
            events(.step(StepProgress(epoch: epoch, epochs: configuration.epochs, step: step, steps: stepCount,
                                      loss: lossValue, imagesPerSecond: Double(seenHere) / max(elapsed, 1e-9),
                                      elapsed: elapsed)))
        }
        let trainSeconds = Date().timeIntervalSince(start)
        try stopIfRequested(shouldStop, stepsPerEpoch: stepCount, events: events)

        try shareBatchNormStatistics()
        let accuracy: KNNAccuracy
        do {
            accuracy = try evaluate(recompute: false)
        } catch var error as UnusableFeaturesError {
            // The epoch's checkpoint is written after this evaluation, so the diverged network is never saved.
            let earlier = savedPosition == nil ? "no checkpoint had been written yet" : "the checkpoint \(checkpointPath) of an earlier point is kept"
            error.source = "after epoch \(epoch + 1) the network"
            var restart = "start again with a lower --lr or --weight-decay"
            if configuration.negativeCount >= data.train.count {
                restart = "start again with --nce-k 0 (full softmax), since --nce-k \(configuration.negativeCount) is not smaller than the \(data.train.count) training images, or with a lower --lr or --weight-decay"
            }
            error.advice = "training stopped and \(earlier); \(restart)"
            throw error
        }
        lastAccuracy = accuracy
        epochsDone += 1
        partialEpoch = PartialEpoch()
        return EpochMetrics(epoch: epoch + 1, loss: lossSum / Double(max(seen, 1)), lr: learningRate,
                            imagesPerSecond: Double(seenHere) / max(trainSeconds, 1e-9),
                            knnTop1: accuracy.top1, knnTop5: accuracy.top5,
                            seconds: Date().timeIntervalSince(start))
    }

    /// One SGD step on `batch` followed by the memory-bank update; returns the loss.
    func trainStep(_ batch: Batch, learningRate: Double, parameters: [Tensor]) throws -> Double {
        let images = try batch.imageTensor(device: runtime.device, channelsLast: runtime.channelsLast)
        let indices = try batch.indexTensor(device: runtime.device)

        let (features, value) = try lossAndGradients(images: images, indices: indices, parameters: parameters)
        try sgdStep(parameters: parameters, momentumBuffers: &momentumBuffers, learningRate: learningRate,
                    momentum: configuration.sgdMomentum, weightDecay: configuration.weightDecay)
        // After backward: the softmax loss saved the bank for its gradient.
        try bank.update(indices: indices, with: features)
        return try value.item()
    }

    /// Runs the forward pass and the loss (with the proximal term when set), then backward
    /// into freshly cleared gradients; returns the features and the loss.
    func lossAndGradients(images: Tensor, indices: Tensor, parameters: [Tensor]) throws -> (features: Tensor, loss: Tensor) {
        let features = try forward(images)
        var value = try loss.loss(features: features, indices: indices, bank: bank)
        if let proximal {
            value = try value + proximal.penalty(features: features, indices: indices, bank: bank)
        }
        for parameter in parameters {
            try parameter.clearGrad()
        }
        try value.backward()
        return (features, value)
    }

    /// Features [B, D] of a training batch in float32, unit length. Under bfloat16 autocast
    /// the features are renormalised in float32, so the loss and the bank see unit rows.
    func forward(_ images: Tensor) throws -> Tensor {
        guard runtime.effectivePrecision == .bfloat16 else {
            return try model(images, training: true)
        }
        let reduced = try withAutocast(device: runtime.device, dtype: .bfloat16) {
            try model(images, training: true)
        }
        return try reduced.to(dtype: .float32).l2Normalized(dim: 1)
    }

    /// Times `steps` training steps with the loader, after `warmup` steps that let
    /// oneDNN/cuDNN pick and cache their kernels. Changes the model and the bank, and
    /// writes nothing.
    public func measureThroughput(steps: Int, warmup: Int = 2) throws -> Throughput {
        let loader = BatchLoader(store: data.train,
                                 transform: .train(TrainAugmentation(outputSize: configuration.imageSize)),
                                 batchSize: configuration.batchSize, shuffle: true, seed: configuration.seed,
                                 workers: runtime.workers, layout: runtime.channelsLast ? .nhwc : .nchw)
        let parameters = model.parameters
        var done = 0
        var images = 0
        var start = Date()
        var epoch = 0
        while done < warmup + steps {
            let batches = loader.epoch(epoch)
            while let batch = try batches.nextBatch() {
                if done == warmup {
                    try Torch.synchronize(runtime.device)
                    start = Date()
                    images = 0
                }
                if done == warmup + steps {
                    break
                }
                _ = try trainStep(batch, learningRate: configuration.learningRate, parameters: parameters)
                images += batch.count
                done += 1
            }
            epoch += 1
        }
        try Torch.synchronize(runtime.device)
        return Throughput(steps: steps, images: images, seconds: Date().timeIntervalSince(start))
    }

    /// Weighted kNN of the test split against the memory bank, or against training
    /// features recomputed with the plain transform (the bank is left untouched).
    public func evaluate(recompute: Bool) throws -> KNNAccuracy {
        let (queries, reference) = try evaluationFeatures(recompute: recompute)
        let knn = WeightedKNN(neighborCount: configuration.neighborCount, temperature: configuration.temperature)
        return try knn.evaluate(queries: queries, queryLabels: data.test.labels, bank: reference,
                                bankLabels: trainLabels, classCount: data.classNames.count)
    }

    /// Test features [test count, D] and the reference rows [train count, D] they are
    /// compared with (the bank, or recomputed features), both in dataset order.
    func evaluationFeatures(recompute: Bool) throws -> (queries: Tensor, reference: Tensor) {
        let queries = try sharedPlainFeatures(of: data.test)
        let reference = recompute ? try sharedPlainFeatures(of: data.train) : bank.features
        return (queries, reference)
    }

    // MARK: state

    /// The point the run has reached.
    var position: TrainingPosition {
        TrainingPosition(epochsDone: epochsDone, stepInEpoch: partialEpoch.stepCount)
    }

    /// Saves a checkpoint, unless the latest one contains the current state, and throws
    /// `TrainingInterrupted` when `shouldStop` returns true.
    private func stopIfRequested(_ shouldStop: () -> Bool, stepsPerEpoch: Int,
                                 events: (TrainingEvent) -> Void) throws {
        guard try stopRequested(shouldStop) else {
            return
        }
        if savedPosition != position {
            try saveCheckpoint(events: events)
        }
        throw TrainingInterrupted(position: position, epochs: configuration.epochs, stepsPerEpoch: stepsPerEpoch,
                                  checkpointPath: checkpointPath)
    }

    func saveCheckpoint(events: (TrainingEvent) -> Void) throws {
        guard writesRunFolder else {
            savedPosition = position
            return
        }
        let names = model.state.filter(\.isParameter).map(\.name)
        var momentum: [String: SafetensorsTensor] = [:]
        for (name, buffer) in zip(names, momentumBuffers) {
            if let buffer {
                momentum[name] = try SafetensorsTensor(name: name, tensor: buffer)
            }
        }
        let checkpoint = Checkpoint(
            configuration: configuration, epochsDone: epochsDone, stepsDone: stepsDone,
            normalizationConstant: (loss as? NCELoss)?.normalizationConstant, classNames: data.classNames,
            modelState: try model.stateEntries(), momentumBuffers: momentum,
            memoryBank: try SafetensorsTensor(name: "memory_bank", tensor: bank.features),
            cpuRandomState: try SafetensorsTensor(name: "rng.cpu", tensor: random.state()),
            stepInEpoch: partialEpoch.stepCount, epochLossSum: partialEpoch.lossSum,
            epochImageCount: partialEpoch.imageCount, worldSize: worldSize,
            trainingImages: trainingImagesFingerprint)
        for warning in try checkpointFiles.save(checkpoint) {
            events(.message("warning: " + warning))
        }
        savedPosition = position
    }

    /// Throws `UnusableFeaturesError` naming `path` when the restored network already gives
    /// NaN, infinite or zero-length features on the first test images. Training on from such
    /// a checkpoint would only fail later, calling the diverged checkpoint the last good one.
    func checkRestoredNetwork(path: String) throws {
        let loader = BatchLoader(store: data.test, transform: .plain(PlainTransform(outputSize: configuration.imageSize)),
                                 batchSize: 64, shuffle: false, seed: configuration.seed, workers: 0,
                                 layout: runtime.channelsLast ? .nhwc : .nchw)
        do {
            _ = try extractFeatures(model: model, loader: loader, count: data.test.count, device: runtime.device,
                                    channelsLast: runtime.channelsLast, precision: runtime.effectivePrecision,
                                    indices: Array(0..<min(64, data.test.count)))
        } catch var error as UnusableFeaturesError {
            error.source = "checkpoint \(path)"
            error.advice = "resume from an earlier checkpoint of the run (checkpoint-epochN.safetensors copied over it), or start again with a lower --lr or --weight-decay"
            throw error
        }
    }

    /// Loads the state of `checkpoint`, read from `path`, after checking that it fits this data.
    func restore(_ checkpoint: Checkpoint, path: String) throws {
        try checkpoint.checkResumable(imageCount: data.train.count, paths: data.train.paths, labels: data.train.labels,
                                      classNames: data.classNames, path: path)
        let stepsPerEpoch = (data.train.count + configuration.batchSize - 1) / configuration.batchSize
        try checkpoint.checkResumable(into: model, stepsPerEpoch: stepsPerEpoch, trainCount: data.train.count,
                                      path: path)
        try model.load(checkpoint.modelState, from: path)
        try withNoGrad {
            try bank.features.copy(from: checkpoint.memoryBank.tensor())
        }
        let names = model.state.filter(\.isParameter).map(\.name)
        for (i, name) in names.enumerated() {
            if let saved = checkpoint.momentumBuffers[name] {
                momentumBuffers[i] = try saved.tensor().to(device: runtime.device)
            }
        }
        if let nce = loss as? NCELoss {
            nce.normalizationConstant = checkpoint.normalizationConstant
        }
        if let state = checkpoint.cpuRandomState {
            try random.setState(state.tensor())
        }
        epochsDone = checkpoint.epochsDone
        stepsDone = checkpoint.stepsDone
        partialEpoch = PartialEpoch(stepCount: checkpoint.stepInEpoch, lossSum: checkpoint.epochLossSum,
                                    imageCount: checkpoint.epochImageCount)
        savedPosition = position
    }

    func writeConfiguration() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(configuration)
        try AtomicFile.write([UInt8](data) + [10], to: runDirectory + "/config.json")
    }

    /// The trained network, for retrieval and evaluation after `run`.
    public var network: ResNet { model }
    public var memoryBank: MemoryBank { bank }
}

/// The steps of an epoch taken so far, with their summed per-image loss and image count.
struct PartialEpoch: Equatable {
    var stepCount = 0
    var lossSum = 0.0
    var imageCount = 0
}
