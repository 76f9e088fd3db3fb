import Foundation
import Torch

/// Noise-contrastive estimation of the non-parametric softmax (Wu et al., CVPR 2018, eq. 6–8).
///
/// For each sample, the positive is its own bank row and K noise rows are drawn
/// uniformly (P_n = 1/N). With P_m(j) = exp(v_j·f / τ) / Z,
///
///     h(j) = P_m(j) / (P_m(j) + K·P_n)
///     loss = −[log h(i) + Σ_noise log(1 − h(j))], averaged over the batch.
///
/// Z is estimated from the first batch as Ẑ = N · mean(exp(v_j·f / τ)) over its B × (K + 1)
/// columns, in float64. With `.fixed` it stays there; with `.movingAverage` every later batch
/// moves it to (1 − r)·Z + r·Ẑ before its loss is computed. Z is state either way: checkpoints
/// save it and a resumed run restores it, never re-estimates it.
public final class NCELoss: InstanceLoss {
    /// The rule that changes Z after the first batch.
    public enum NormalizationUpdate: Sendable, Equatable {
        /// Z keeps the first batch's estimate (the original release).
        case fixed
        /// Z ← (1 − rate)·Z + rate·Ẑ at every batch, Ẑ being that batch's estimate.
        case movingAverage(rate: Double)
    }

    public let negativeCount: Int
    public let temperature: Double
    /// Z, nil until the first batch.
    public var normalizationConstant: Double?
    public let normalizationUpdate: NormalizationUpdate
    /// Turns this process's estimate Ẑ into the global batch's, identical on every rank of
    /// a data-parallel run; nil uses the local estimate.
    public var combineEstimate: ((Double) throws -> Double)?
    /// Draws the noise rows; nil uses libtorch's default generator.
    public let generator: Generator?
    /// The slice of the global batch's noise rows this rank uses in a data-parallel run.
    public var noiseShard = NoiseShard.whole

    /// Guards log(0) as the original release does.
    static let epsilon = 1e-7

    public init(negativeCount: Int, temperature: Double, normalizationConstant: Double? = nil,
                normalizationUpdate: NormalizationUpdate = .fixed, generator: Generator? = nil) {
        self.negativeCount = negativeCount
        self.temperature = temperature
        self.normalizationConstant = normalizationConstant
        self.normalizationUpdate = normalizationUpdate
        self.generator = generator
    }

    public func loss(features: Tensor, indices: Tensor, bank: MemoryBank) throws -> Tensor {
        let noise = try UniformNoise.draw(batch: features.shape[0], count: negativeCount, bankSize: bank.count,
                                          device: features.device, generator: generator, shard: noiseShard)
        return try loss(features: features, indices: indices, noise: noise, bank: bank)
    }

    /// Computes the loss with the noise rows given as `noise` [B, K], int64 bank indices on the
    /// bank's device. Updates Z as `loss(features:indices:bank:)` does.
    public func loss(features: Tensor, indices: Tensor, noise: Tensor, bank: MemoryBank) throws -> Tensor {
        let batch = features.shape[0]
        UniformNoise.validate(noise, batch: batch, count: negativeCount)
        let n = Double(bank.count)
        let kpn = Double(negativeCount) / n

        // Column 0 is the positive, columns 1…K the noise rows: [B, K+1].
        let similarities = try UniformNoise.similarities(features: features, indices: indices, noise: noise, bank: bank)
        let z = try updatedNormalization(similarities, bankSize: n)
        let pm = try (similarities / temperature).exp() / z

        let positive = try pm.narrowed(dim: 1, start: 0, length: 1)
        let negatives = try pm.narrowed(dim: 1, start: 1, length: negativeCount)
        let logData = try (positive / (positive + (kpn + NCELoss.epsilon))).log()
        let logNoise = try ((negatives + (kpn + NCELoss.epsilon)).log() * -1.0) + Foundation.log(kpn)
        return try -(logData.sum() + logNoise.sum()) / Double(batch)
    }

    /// Returns Z for this batch after estimating or updating it by `normalizationUpdate`.
    private func updatedNormalization(_ similarities: Tensor, bankSize: Double) throws -> Double {
        if let z = normalizationConstant, normalizationUpdate == .fixed {
            return z
        }
        var estimate = try batchEstimate(similarities, bankSize: bankSize)
        if let combineEstimate {
            estimate = try combineEstimate(estimate)
        }
        var z = estimate
        if let previous = normalizationConstant, case .movingAverage(let rate) = normalizationUpdate {
            z = (1 - rate) * previous + rate * estimate
        }
        normalizationConstant = z
        return z
    }

    /// Ẑ = N · mean(exp(v·f/τ)) over the batch's columns, in float64 whatever the features' dtype.
    private func batchEstimate(_ similarities: Tensor, bankSize: Double) throws -> Double {
        let mean = try withNoGrad {
            try (similarities.to(dtype: .float64) / temperature).exp().mean().item()
        }
        return mean * bankSize
    }
}
