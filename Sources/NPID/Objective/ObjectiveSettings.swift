import Torch

/// The loss a run trains with, as `--loss` names it.
public enum LossFunction: String, Codable, Sendable, CaseIterable {
    /// Noise-contrastive estimation (`NCELoss`), the original release's objective.
    case nce
    /// Softmax cross-entropy over the positive and K sampled rows (`SoftmaxCrossEntropyLoss`).
    case softmaxCrossEntropy = "softmax-ce"
}

/// The update rule of NCE's normalisation constant Z, as `--nce-z` names it.
public enum NormalizationMode: String, Codable, Sendable, CaseIterable {
    /// Z estimated once from the first batch, then fixed (the original release).
    case fixed
    /// Z ← (1 − r)·Z + r·Ẑ after the first batch, r being `normalizationRate`.
    case momentum
}

extension TrainingConfiguration {
    /// Creates the loss this configuration selects, drawing noise rows from `generator`.
    public func makeLoss(generator: Generator?) -> InstanceLoss {
        switch lossKind {
        case .nce(let k):
            let update: NCELoss.NormalizationUpdate = normalizationMode == .momentum
                ? .movingAverage(rate: normalizationRate) : .fixed
            return NCELoss(negativeCount: k, temperature: temperature, normalizationUpdate: update, generator: generator)
        case .softmaxCrossEntropy(let k):
            return SoftmaxCrossEntropyLoss(negativeCount: k, temperature: temperature, generator: generator)
        case .softmax:
            return NonParametricSoftmaxLoss(temperature: temperature)
        }
    }

    /// The proximal term, or nil when `proximalWeight` is 0.
    public var proximalRegularization: ProximalRegularization? {
        proximalWeight > 0 ? ProximalRegularization(weight: proximalWeight) : nil
    }
}
