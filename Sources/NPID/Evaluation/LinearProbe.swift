import Foundation
import Torch

/// Accuracy of a classifier on labelled test features, in percent.
public struct ClassificationAccuracy: Sendable, Equatable {
    public var top1: Double
    public var top5: Double
    /// Top-1 accuracy of each class's images, in percent; nil for a class with none.
    public var perClassTop1: [Double?]
    public var count: Int
}

/// A linear classifier on standardised features: logits = ((x − mean) / std) · Wᵀ + b.
public struct LinearClassifier {
    /// Per-dimension mean [F] and standard deviation [F] of the training features.
    public let mean: Tensor
    public let standardDeviation: Tensor
    /// Weight [C, F] and bias [C].
    public let weight: Tensor
    public let bias: Tensor

    /// Class scores [N, C] for features [N, F].
    public func logits(_ features: Tensor) throws -> Tensor {
        try withNoGrad {
            try ((features - mean) / standardDeviation).linear(weight: weight, bias: bias)
        }
    }

    /// Top-1, top-5 and per-class accuracy on `features` [N, F] with true `labels`.
    public func accuracy(features: Tensor, labels: [Int], classCount: Int) throws -> ClassificationAccuracy {
        precondition(features.shape[0] == labels.count, "one label per feature row")
        let ranked = min(5, classCount)
        let predictions = try logits(features).topk(ranked, dim: 1).indices.to(device: .cpu).toArray(of: Int64.self)
        var top1Hits = 0
        var top5Hits = 0
        var classHits = [Int](repeating: 0, count: classCount)
        var classTotals = [Int](repeating: 0, count: classCount)
        for (row, truth) in labels.enumerated() {
            let guesses = predictions[(row * ranked)..<((row + 1) * ranked)]
            classTotals[truth] += 1
            if guesses.first == Int64(truth) {
                top1Hits += 1
                classHits[truth] += 1
            }
            if guesses.contains(Int64(truth)) {
                top5Hits += 1
            }
        }
        let total = Double(max(labels.count, 1))
        return ClassificationAccuracy(
            top1: 100 * Double(top1Hits) / total, top5: 100 * Double(top5Hits) / total,
            perClassTop1: zip(classHits, classTotals).map { $1 > 0 ? 100 * Double($0) / Double($1) : nil },
            count: labels.count)
    }
}

/// Linear evaluation of frozen features, the standard protocol for self-supervised
/// representations: multinomial logistic regression (softmax cross-entropy) trained by
/// SGD with momentum and a cosine learning-rate schedule on features computed once.
///
/// Features are standardised with the training split's per-dimension mean and standard
/// deviation first, so that one learning rate suits any layer and width.
public struct LinearProbe: Sendable {
    public var epochs = 100
    public var batchSize = 256
    public var learningRate = 0.1
    public var momentum = 0.9
    public var weightDecay = 0.0
    /// Seed of the per-epoch shuffle.
    public var seed: UInt64 = 0

    /// The defaults, defined only here; the command line reads them from this value.
    public static let defaults = LinearProbe()

    public init() {}

    /// Checks every field, naming the flag of the first bad one.
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
        try require(momentum >= 0 && momentum < 1, "--momentum must be in [0, 1), got \(momentum)")
        try require(weightDecay >= 0 && weightDecay.isFinite, "--weight-decay must be 0 or more, got \(weightDecay)")
    }

    /// Returns the learning rate of `epoch` (from 0): lr · ½(1 + cos(π · epoch / epochs)).
    public func learningRate(epoch: Int) -> Double {
        learningRate * 0.5 * (1 + cos(Double.pi * Double(epoch) / Double(epochs)))
    }

    /// Trains a classifier on `features` [N, F] with `labels` (each in 0..<classCount).
    ///
    /// - Parameter epochEnded: called after each epoch with the epoch (from 1) and its mean loss.
    public func fit(features: Tensor, labels: [Int], classCount: Int,
                    epochEnded: (Int, Double) -> Void = { _, _ in }) throws -> LinearClassifier {
        try validate()
        precondition(features.shape[0] == labels.count, "one label per feature row")
        let count = labels.count
        let device = features.device
        let (mean, deviation) = try withNoGrad { () -> (Tensor, Tensor) in
            let mean = try features.mean(dims: [0], keepDim: true)                              // [1, F]
            let deviation = try (features - mean).pow(2).mean(dims: [0], keepDim: true).sqrt().clamp(min: 1e-6)
            return (mean, deviation)
        }
        let standardized = try withNoGrad { try (features - mean) / deviation }              // [N, F]
        let targets = try Tensor(labels.map(Int64.init)).to(device: device)

        let weight = try Tensor.zeros([classCount, features.shape[1]], device: device).requiringGrad()
        let bias = try Tensor.zeros([classCount], device: device).requiringGrad()
        var buffers: [Tensor?] = [nil, nil]
        for epoch in 0..<epochs {
            let order = shuffledOrder(count: count, epoch: epoch)
            var lossSum = try Tensor.zeros([], dtype: .float64, device: device)
            var start = 0
            while start < count {
                let length = min(batchSize, count - start)
                let rows = try Tensor(order[start..<(start + length)].map(Int64.init)).to(device: device)
                let logits = try standardized.indexSelect(dim: 0, index: rows).linear(weight: weight, bias: bias)
                let loss = try logits.crossEntropy(target: targets.indexSelect(dim: 0, index: rows))
                try weight.clearGrad()
                try bias.clearGrad()
                try loss.backward()
                try sgdStep(parameters: [weight, bias], momentumBuffers: &buffers, learningRate: learningRate(epoch: epoch),
                            momentum: momentum, weightDecay: weightDecay)
                lossSum = try lossSum + loss.detached().to(dtype: .float64) * Double(length)
                start += length
            }
            let meanLoss = try lossSum.item() / Double(count)
            guard meanLoss.isFinite else {
                throw LinearProbeDiverged(epoch: epoch + 1, loss: meanLoss, learningRate: learningRate,
                                          weightDecay: weightDecay, weightsOnly: false)
            }
            epochEnded(epoch + 1, meanLoss)
        }
        // Each epoch's loss comes before that epoch's last step, which can still overflow the
        // weights, and a classifier of infinite or NaN weights gives a meaningless accuracy.
        guard try weight.allFinite(), try bias.allFinite() else {
            throw LinearProbeDiverged(epoch: epochs, loss: .nan, learningRate: learningRate, weightDecay: weightDecay,
                                      weightsOnly: true)
        }
        return LinearClassifier(mean: mean, standardDeviation: deviation, weight: try weight.detached(),
                                bias: try bias.detached())
    }

    /// Returns a permutation of 0..<count that depends only on (seed, epoch).
    func shuffledOrder(count: Int, epoch: Int) -> [Int] {
        var order = Array(0..<count)
        var random = SampleRandom.forShuffle(seed: seed, epoch: epoch)
        for index in stride(from: count - 1, to: 0, by: -1) {
            order.swapAt(index, random.nextInt(below: index + 1))
        }
        return order
    }
}

/// A linear probe whose loss became NaN or infinite, so its accuracy would mean nothing.
public struct LinearProbeDiverged: Error, CustomStringConvertible {
    public let epoch: Int
    public let loss: Double
    public let learningRate: Double
    public let weightDecay: Double
    /// True when the loss stayed finite but the last step left NaN or infinite weights.
    public let weightsOnly: Bool

    public var description: String {
        let failure = weightsOnly
            ? "the linear probe's weights became NaN or infinite"
            : "the linear probe's loss became \(loss.isNaN ? "NaN" : "\(loss)")"
        // Plain SGD's decay step w ← w − lr·wd·w overshoots once lr·wd passes 2, so a large
        // --weight-decay diverges at any learning rate that is not lowered with it.
        guard weightDecay > 0 else {
            return "\(failure) in epoch \(epoch) with --lr \(learningRate); pass a lower --lr"
        }
        return "\(failure) in epoch \(epoch) with --lr \(learningRate) and --weight-decay \(weightDecay); pass a lower --lr or --weight-decay"
    }
}
