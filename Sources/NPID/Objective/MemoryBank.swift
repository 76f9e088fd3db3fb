import Torch

/// The memory bank V = {v_1 … v_N}: the last feature seen for every training image,
/// row i belonging to the image with dataset index i. Tensor [N, D], never part of
/// the autograd graph.
public final class MemoryBank {
    public let features: Tensor
    /// m in v_i ← normalise(m·v_i + (1 − m)·f_i).
    public let momentum: Double

    public var count: Int { features.shape[0] }
    public var dimension: Int { features.shape[1] }

    /// A bank initialised as the original release does: each coordinate uniform in
    /// [−a, a] with a = 1/√(D/3), drawn from libtorch's default CPU generator. Rows
    /// are not unit length until first updated.
    public init(count: Int, dimension: Int, momentum: Double, device: Device = .cpu) throws {
        let bound = 1 / (Double(dimension) / 3).squareRoot()
        let initial = try Tensor.rand([count, dimension]) * (2 * bound) - bound
        features = try initial.to(device: device)
        self.momentum = momentum
    }

    /// A bank holding `features` [N, D] as they are (from a checkpoint).
    public init(features: Tensor, momentum: Double) {
        self.features = features
        self.momentum = momentum
    }

    /// Rows named by `indices` (int64, any shape) → [indices…, D].
    public func rows(_ indices: Tensor) throws -> Tensor {
        let flat = try indices.reshaped([-1])
        let picked = try features.indexSelect(dim: 0, index: flat)
        return try picked.reshaped(indices.shape + [dimension])
    }

    /// Moves the rows of the batch's images toward their new features and renormalises:
    /// v_i ← (m·v_i + (1 − m)·f_i) / ‖m·v_i + (1 − m)·f_i‖.
    ///
    /// - Parameters:
    ///   - indices: dataset indices [B], int64, on the bank's device.
    ///   - batchFeatures: [B, D], unit length; detached here.
    /// - Note: A batch must not name the same index twice: libtorch's index_copy does
    ///   not say which duplicate wins. The epoch loader never yields duplicates.
    public func update(indices: Tensor, with batchFeatures: Tensor) throws {
        try withNoGrad {
            let previous = try features.indexSelect(dim: 0, index: indices)
            let mixed = try (previous * momentum).adding(batchFeatures.detached(), scaledBy: 1 - momentum)
            try features.indexCopy(dim: 0, index: indices, source: mixed.l2Normalized(dim: 1))
        }
    }
}
