import Torch

/// A setting the user got wrong: the CLI reports it as a usage error (exit code 2).
public struct UsageError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// Everything that defines a training run's result. Saved in config.json and in every
/// checkpoint, so a run can be resumed and reproduced. Defaults are the published CIFAR
/// recipe and are defined only here; the command line reads them from `.defaults`.
public struct TrainingConfiguration: Codable, Sendable, Equatable {
    public var model = ModelConfiguration()
    public var epochs = 200
    public var batchSize = 128
    public var learningRate = 0.03
    public var sgdMomentum = 0.9
    public var weightDecay = 5e-4
    public var schedule = LearningRateSchedule.step
    /// K noise samples for NCE; 0 selects the full non-parametric softmax.
    public var negativeCount = 4096
    /// τ of exp(v·f / τ); also σ of the kNN vote.
    public var temperature = 0.07
    /// m of the memory bank update.
    public var bankMomentum = 0.5
    public var seed: UInt64 = 0
    /// Train on the first N images of each class (file-name order); nil keeps all.
    public var limitPerClass: Int?
    /// Evaluate on the first N test images of each class; nil keeps all.
    public var testLimitPerClass: Int?
    /// k of the weighted kNN, capped at the bank size.
    public var neighborCount = 200
    /// Side of the square images the network takes as input, in pixels.
    public var imageSize = 32

    public static let defaults = TrainingConfiguration()

    public init() {}

    public var lossKind: LossKind {
        negativeCount == 0 ? .softmax : .nce(negatives: negativeCount)
    }

    /// Checks every field once, naming the flag and the allowed range of the first bad one.
    public func validate() throws {
        func require(_ condition: Bool, _ message: String) throws {
            if !condition { throw UsageError(message) }
        }
        try require(epochs >= 1, "--epochs must be at least 1, got \(epochs)")
        try require(batchSize >= 1, "--batch-size must be at least 1, got \(batchSize)")
        try require(learningRate > 0 && learningRate.isFinite, "--lr must be a positive number, got \(learningRate)")
        try require(weightDecay >= 0 && weightDecay.isFinite, "--weight-decay must be 0 or more, got \(weightDecay)")
        try require(negativeCount >= 0, "--nce-k must be 0 (full softmax) or a positive number of noise samples, got \(negativeCount)")
        try require(temperature > 0 && temperature.isFinite, "--nce-t must be a positive temperature, got \(temperature)")
        try require(bankMomentum >= 0 && bankMomentum < 1, "--nce-m must be in [0, 1), got \(bankMomentum)")
        try require(model.featureDimension >= 1, "--low-dim must be at least 1, got \(model.featureDimension)")
        try require(model.width >= 1, "--width must be at least 1, got \(model.width)")
        try require(neighborCount >= 1, "--knn-k must be at least 1, got \(neighborCount)")
        try require(imageSize >= 8, "--image-size must be at least 8 pixels, got \(imageSize)")
        if let limit = limitPerClass {
            try require(limit >= 1, "--limit-per-class must be at least 1, got \(limit)")
        }
        if let limit = testLimitPerClass {
            try require(limit >= 1, "--test-limit-per-class must be at least 1, got \(limit)")
        }
    }
}

/// Execution settings of a run, which change its result by floating-point noise at most.
public struct RuntimeOptions: Sendable {
    public var device: Device = .cpu
    /// libtorch intra-op threads; nil keeps libtorch's default (one per core).
    public var threads: Int?
    /// Loader threads that prepare batches while the model computes.
    public var workers = 1
    /// NHWC strides for images and convolution weights.
    public var channelsLast = true
    /// Also measure the untrained network's kNN accuracy before training.
    public var evaluateUntrained = false
    /// Checkpoints kept in the run folder, newest first (see `CheckpointFiles`).
    public var keepCheckpoints = 2

    public init() {}
}
