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
    /// NCE, or softmax cross-entropy over the K sampled rows; with `negativeCount` 0 both
    /// become the full softmax.
    public var loss = LossFunction.nce
    /// Whether NCE's Z stays at the first batch's estimate or follows a moving average.
    public var normalizationMode = NormalizationMode.fixed
    /// r of the moving-average Z ← (1 − r)·Z + r·Ẑ.
    public var normalizationRate = 0.01
    /// λ of the proximal term λ·‖f_i − v_i‖²; 0 leaves it out.
    public var proximalWeight = 0.0
    /// Batch-norm statistics over the global batch of all ranks of a data-parallel run
    /// instead of each rank's slice; a single process is unaffected.
    public var synchronizeBatchNorm = false

    public static let defaults = TrainingConfiguration()

    public init() {}

    public var lossKind: LossKind {
        if negativeCount == 0 {
            return .softmax
        }
        switch loss {
        case .nce: return .nce(negatives: negativeCount)
        case .softmaxCrossEntropy: return .softmaxCrossEntropy(negatives: negativeCount)
        }
    }

    /// Checks every field once, naming the flag and the allowed range of the first bad one.
    public func validate() throws {
        func require(_ condition: Bool, _ message: String) throws {
            if !condition { throw UsageError(message) }
        }
        try require(epochs >= 1, "--epochs must be at least 1, got \(epochs)")
        try require(batchSize >= 1, "--batch-size must be at least 1, got \(batchSize)")
        try require(learningRate > 0 && learningRate.isFinite, "--lr must be a positive number, got \(learningRate)")
        // The optimizer computes in float32, where a larger rate overflows to infinity.
        try require(learningRate <= Double(Float.greatestFiniteMagnitude),
                    "--lr \(learningRate) is beyond float32's range (3.4e38); pass a rate such as 0.03")
        try require(weightDecay >= 0 && weightDecay.isFinite, "--weight-decay must be 0 or more, got \(weightDecay)")
        try require(sgdMomentum >= 0 && sgdMomentum < 1, "--momentum must be in [0, 1), got \(sgdMomentum)")
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
        try require(normalizationRate > 0 && normalizationRate <= 1, "--nce-z-rate must be in (0, 1], got \(normalizationRate)")
        if normalizationMode == .momentum && lossKind != .nce(negatives: negativeCount) {
            throw UsageError("--nce-z momentum applies only to NCE; use it with --loss nce and --nce-k above 0, or drop it")
        }
        try require(proximalWeight >= 0 && proximalWeight.isFinite, "--proximal must be 0 (off) or a positive weight, got \(proximalWeight)")
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
    /// Arithmetic of the network's forward and backward pass; nil picks the device's
    /// default (bfloat16 autocast on CUDA and on CPUs with bfloat16 units, else float32).
    /// The loss, Z and the memory bank are float32 (Z float64) whatever this setting is.
    public var precision: Precision?

    /// The precision in effect on `device`.
    public var effectivePrecision: Precision {
        if let precision { return precision }
        if case .cuda = device { return .bfloat16 }
        return Torch.cpuHasBFloat16Units ? .bfloat16 : .float32
    }
    /// Checkpoints kept in the run folder, newest first (see `CheckpointFiles`).
    public var keepCheckpoints = 2

    public init() {}

    /// Returns these options with NCHW layout where NHWC training is known to corrupt memory.
    ///
    /// In libtorch 2.11 on CPU, oneDNN's weight gradient of a channels-last convolution with
    /// fewer than 16 channels corrupts the heap with several threads and some batch sizes.
    /// The process then aborts (width 8, batch 15 and 2 threads, for one). On a 2-core
    /// AVX-512 CPU, widths 16 to 64 with 2 to 8 threads and batches 7 to 18 ran without a fault.
    func adjustedForTraining(_ model: ModelConfiguration) -> RuntimeOptions {
        var options = self
        if device == .cpu && model.width < 16 {
            options.channelsLast = false
        }
        return options
    }
}

extension TrainingConfiguration {
    /// Decodes a configuration from config.json or a checkpoint. The fields from `loss` on came
    /// later than the others, so a configuration written before them may lack them, and they
    /// then keep their defaults. Every other field is required.
    ///
    /// NOTE: a field added to the struct must be decoded here too, or it silently keeps its
    /// default; ConfigurationDecodingTests fails until it is.
    public init(from decoder: Decoder) throws {
        self.init()
        let container = try decoder.container(keyedBy: CodingKeys.self)
        model = try container.decode(ModelConfiguration.self, forKey: .model)
        epochs = try container.decode(Int.self, forKey: .epochs)
        batchSize = try container.decode(Int.self, forKey: .batchSize)
        learningRate = try container.decode(Double.self, forKey: .learningRate)
        sgdMomentum = try container.decode(Double.self, forKey: .sgdMomentum)
        weightDecay = try container.decode(Double.self, forKey: .weightDecay)
        schedule = try container.decode(LearningRateSchedule.self, forKey: .schedule)
        negativeCount = try container.decode(Int.self, forKey: .negativeCount)
        temperature = try container.decode(Double.self, forKey: .temperature)
        bankMomentum = try container.decode(Double.self, forKey: .bankMomentum)
        seed = try container.decode(UInt64.self, forKey: .seed)
        limitPerClass = try container.decodeIfPresent(Int.self, forKey: .limitPerClass)
        testLimitPerClass = try container.decodeIfPresent(Int.self, forKey: .testLimitPerClass)
        neighborCount = try container.decode(Int.self, forKey: .neighborCount)
        imageSize = try container.decode(Int.self, forKey: .imageSize)

        loss = try container.decodeIfPresent(LossFunction.self, forKey: .loss) ?? loss
        normalizationMode = try container.decodeIfPresent(NormalizationMode.self, forKey: .normalizationMode)
            ?? normalizationMode
        normalizationRate = try container.decodeIfPresent(Double.self, forKey: .normalizationRate) ?? normalizationRate
        proximalWeight = try container.decodeIfPresent(Double.self, forKey: .proximalWeight) ?? proximalWeight
        synchronizeBatchNorm = try container.decodeIfPresent(Bool.self, forKey: .synchronizeBatchNorm)
            ?? synchronizeBatchNorm
    }
}

/// Arithmetic precision of the network.
public enum Precision: String, Sendable, CaseIterable {
    case float32 = "fp32"
    /// libtorch autocast to bfloat16: convolutions and matrix products in bfloat16,
    /// numerically sensitive operators in float32.
    case bfloat16 = "bf16"
}
