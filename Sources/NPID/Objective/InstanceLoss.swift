import Torch

/// Which instance-discrimination loss a run trains with.
public enum LossKind: Sendable, Equatable {
    /// NCE against K noise rows drawn uniformly from the bank, Z fixed from the first batch.
    case nce(negatives: Int)
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
