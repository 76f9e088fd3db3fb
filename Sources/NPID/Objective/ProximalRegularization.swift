import Torch

/// Proximal regularisation (Wu et al., CVPR 2018, section 3.4): the penalty
///
///     λ · mean over the batch of ‖f_i − v_i‖²
///
/// between each sample's new feature f_i and its bank row v_i from the previous visit, added
/// to the loss. It damps the oscillation of a sample's feature between visits. The paper
/// pairs it with the bank update v_i ← f_i. Here it runs alongside the momentum update of
/// `MemoryBank`, which moves the same v_i after the step.
public struct ProximalRegularization: Sendable {
    /// λ.
    public let weight: Double

    public init(weight: Double) {
        self.weight = weight
    }

    /// Computes the penalty as a one-element tensor, differentiable with respect to `features`
    /// [B, D]. It reads the bank rows of `indices` [B], so call it before the bank update.
    public func penalty(features: Tensor, indices: Tensor, bank: MemoryBank) throws -> Tensor {
        let previous = try bank.rows(indices)                                      // [B, D]
        let difference = try bank.matchingPrecision(features) - previous
        return try (difference * difference).sum(dims: [1]).mean() * weight
    }
}
