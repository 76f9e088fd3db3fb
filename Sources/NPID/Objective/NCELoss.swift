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
/// Z is estimated once, from the first batch, as N · mean(exp(v_j·f / τ)) and is state
/// from then on: checkpoints save it and a resumed run restores it, never re-estimates.
public final class NCELoss: InstanceLoss {
    public let negativeCount: Int
    public let temperature: Double
    /// Z, nil until the first batch.
    public var normalizationConstant: Double?

    /// Guards log(0) as the original release does.
    static let epsilon = 1e-7

    public init(negativeCount: Int, temperature: Double, normalizationConstant: Double? = nil) {
        self.negativeCount = negativeCount
        self.temperature = temperature
        self.normalizationConstant = normalizationConstant
    }

    public func loss(features: Tensor, indices: Tensor, bank: MemoryBank) throws -> Tensor {
        let batch = features.shape[0]
        let n = Double(bank.count)
        let k = Double(negativeCount)

        // Column 0 is the positive, columns 1…K the noise draws: [B, K+1].
        let noise = try Tensor.randint(0, bank.count, [batch, negativeCount], device: features.device)
        let columns = try Tensor.cat([indices.unsqueezed(1), noise], dim: 1)
        let weights = try bank.rows(columns)                                   // [B, K+1, D]

        let similarities = try weights.bmm(features.unsqueezed(2)).squeezed(2)  // [B, K+1]
        let unnormalized = try (similarities / temperature).exp()
        let z = try normalizationConstant ?? estimateZ(unnormalized, bankSize: n)
        let pm = try unnormalized / z

        let kpn = k / n
        let positive = try pm.narrowed(dim: 1, start: 0, length: 1)
        let negatives = try pm.narrowed(dim: 1, start: 1, length: negativeCount)
        let logData = try (positive / (positive + (kpn + NCELoss.epsilon))).log()
        let logNoise = try ((negatives + (kpn + NCELoss.epsilon)).log() * -1.0) + Foundation.log(kpn)
        return try -(logData.sum() + logNoise.sum()) / Double(batch)
    }

    /// Z = N · mean(exp(v·f/τ)) over the first batch, computed in float64.
    private func estimateZ(_ unnormalized: Tensor, bankSize: Double) throws -> Double {
        let mean = try withNoGrad { try unnormalized.to(dtype: .float64).mean().item() }
        let z = mean * bankSize
        normalizationConstant = z
        return z
    }
}
