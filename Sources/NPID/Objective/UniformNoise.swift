import Torch

/// Noise rows for the sampled losses: K bank indices per sample, drawn uniformly with
/// replacement (P_n(j) = 1/N). The positive's own index may be among them, as in the
/// original release.
enum UniformNoise {
    /// Returns int64 indices [batch, count] in 0..<bankSize on `device`.
    ///
    /// With a generator the draw happens on the CPU and is copied to `device`, so it depends on
    /// that generator alone. Without one it uses libtorch's default generator of `device`.
    ///
    /// With a `shard`, the draw covers the whole global batch of `shard.count` ranks' batches
    /// and returns rank `shard.index`'s rows, so the generator advances in step on every rank
    /// and the rows equal those of one process drawing for the global batch.
    static func draw(batch: Int, count: Int, bankSize: Int, device: Device, generator: Generator?,
                     shard: NoiseShard = .whole) throws -> Tensor {
        guard let generator else {
            return try Tensor.randint(0, bankSize, [batch, count], device: device)
        }
        // NOTE: on a GPU this copies B·K int64 values to the device every step (4 MB for
        // B = 128, K = 4096); not measured against drawing on the device.
        var rows = try Tensor.randint(0, bankSize, [batch * shard.count, count], generator: generator)
        if shard.count > 1 {
            rows = try rows.narrowed(dim: 0, start: shard.index * batch, length: batch)
        }
        return try rows.to(device: device)
    }

    /// Checks that `noise` is int64 [batch, count], the shape the sampled losses expect.
    static func validate(_ noise: Tensor, batch: Int, count: Int) {
        precondition(noise.shape == [batch, count], "noise indices must have shape [\(batch), \(count)], got \(noise.shape)")
        precondition(noise.dtype == .int64, "noise indices must be int64, got \(noise.dtype)")
    }

    /// Returns the similarities [B, K+1] of each feature to its positive row (column 0) and
    /// to its K noise rows, in the bank's precision.
    static func similarities(features: Tensor, indices: Tensor, noise: Tensor, bank: MemoryBank) throws -> Tensor {
        let columns = try Tensor.cat([indices.unsqueezed(1), noise], dim: 1)   // [B, K+1]
        let weights = try bank.rows(columns)                                    // [B, K+1, D]
        let f = try bank.matchingPrecision(features)
        return try weights.bmm(f.unsqueezed(2)).squeezed(2)
    }
}

/// Which slice of a global batch's noise rows this process uses: rank `index` of `count`.
public struct NoiseShard: Sendable, Equatable {
    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// The whole draw, for a single process.
    public static let whole = NoiseShard(index: 0, count: 1)
}
