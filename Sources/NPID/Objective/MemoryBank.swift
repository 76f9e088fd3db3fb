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
    /// [−a, a] with a = 1/√(D/3), drawn on the CPU from `generator` (libtorch's default CPU
    /// generator when nil). Rows are not unit length until first updated.
    public init(count: Int, dimension: Int, momentum: Double, device: Device = .cpu,
                generator: Generator? = nil) throws {
        let bound = 1 / (Double(dimension) / 3).squareRoot()
        let unit = try generator.map { try Tensor.rand([count, dimension], generator: $0) }
            ?? Tensor.rand([count, dimension])
        let initial = try unit * (2 * bound) - bound
        features = try initial.to(device: device)
        self.momentum = momentum
    }

    /// Creates a bank that uses `features` [N, D] as they are (from a checkpoint).
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
    /// An index named more than once in the batch gets one update with f_i the mean of its
    /// features, so the result does not depend on their order. The epoch loader never names
    /// an index twice; other callers may.
    ///
    /// - Parameters:
    ///   - indices: dataset indices [B], int64, on the bank's device.
    ///   - batchFeatures: [B, D], unit length; detached here.
    public func update(indices: Tensor, with batchFeatures: Tensor) throws {
        try withNoGrad {
            let (rows, rowFeatures) = try Self.mergingDuplicates(indices: indices,
                                                                 features: matchingPrecision(batchFeatures.detached()))
            let previous = try features.indexSelect(dim: 0, index: rows)
            let mixed = try (previous * momentum).adding(rowFeatures, scaledBy: 1 - momentum)
            try features.indexCopy(dim: 0, index: rows, source: mixed.l2Normalized(dim: 1))
        }
    }

    /// Returns each distinct index once, in order of first appearance, with the mean of its
    /// rows of `features` [B, D]. Returns the inputs themselves when no index repeats.
    static func mergingDuplicates(indices: Tensor, features: Tensor) throws -> (indices: Tensor, features: Tensor) {
        let named = try indices.to(device: .cpu).toArray(of: Int64.self)
        var slotOfIndex: [Int64: Int] = [:]
        var distinct: [Int64] = []
        for index in named where slotOfIndex[index] == nil {
            slotOfIndex[index] = distinct.count
            distinct.append(index)
        }
        if distinct.count == named.count {
            return (indices, features)
        }

        // averaging [U, B]: row u contains 1/c_u in the c_u columns that name distinct[u].
        var occurrences = [Int](repeating: 0, count: distinct.count)
        for index in named {
            occurrences[slotOfIndex[index]!] += 1
        }
        var averaging = [Double](repeating: 0, count: distinct.count * named.count)
        for (position, index) in named.enumerated() {
            let slot = slotOfIndex[index]!
            averaging[slot * named.count + position] = 1 / Double(occurrences[slot])
        }
        let weights = try Tensor(averaging, shape: [distinct.count, named.count])
            .to(device: features.device, dtype: features.dtype)
        return (try Tensor(distinct).to(device: indices.device), try weights.matmul(features))
    }
}
