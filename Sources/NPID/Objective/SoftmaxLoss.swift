import Torch

/// The full non-parametric softmax (Wu et al., CVPR 2018, eq. 2):
/// P(i | f) = exp(v_i·f / τ) / Σ_j exp(v_j·f / τ) over all N bank rows, loss −log P(i | f_i).
public final class NonParametricSoftmaxLoss: InstanceLoss {
    public let temperature: Double

    public init(temperature: Double) {
        self.temperature = temperature
    }

    public func loss(features: Tensor, indices: Tensor, bank: MemoryBank) throws -> Tensor {
        let logits = try bank.matchingPrecision(features).matmul(bank.features.t()) / temperature   // [B, N]
        return try logits.crossEntropy(target: indices)
    }
}
