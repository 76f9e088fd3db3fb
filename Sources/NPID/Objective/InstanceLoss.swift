import Torch

/// The instance-discrimination loss a run trains with.
public enum LossKind: Sendable, Equatable {
    /// NCE against K noise rows drawn uniformly from the bank.
    case nce(negatives: Int)
    /// Softmax cross-entropy over the positive and K noise rows drawn uniformly from the bank.
    case softmaxCrossEntropy(negatives: Int)
    /// The full non-parametric softmax over all N rows of the bank.
    case softmax
}

/// A loss over a batch of features and the memory bank.
public protocol InstanceLoss: AnyObject {
    /// Mean loss over the batch, differentiable with respect to `features`.
    ///
    /// - Parameters:
    ///   - features: f [B, D], unit length, requiring gradient.
    ///   - indices: dataset indices [B], int64, on the bank's device.
    func loss(features: Tensor, indices: Tensor, bank: MemoryBank) throws -> Tensor
}

extension MemoryBank {
    /// Returns `features` in the bank's dtype, so that a network running in bfloat16 still gets
    /// its similarities, loss and Z at the bank's precision (float32 in training).
    func matchingPrecision(_ features: Tensor) throws -> Tensor {
        features.dtype == self.features.dtype ? features : try features.to(dtype: self.features.dtype)
    }
}
