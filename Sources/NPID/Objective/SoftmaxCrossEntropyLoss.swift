import Torch

/// Softmax cross-entropy over the positive and K sampled bank rows, the objective of the
/// authors' later release (and of MoCo and CPC):
///
///     logits = [v_i·f, v_j1·f, …, v_jK·f] / τ
///     loss = −log(exp(logits_0) / Σ_c exp(logits_c)), averaged over the batch,
///
/// with the K rows j drawn uniformly from the bank. Unlike NCE it needs no normalisation
/// constant, and unlike the full softmax it costs O(K) rather than O(N) per sample.
public final class SoftmaxCrossEntropyLoss: InstanceLoss {
    public let negativeCount: Int
    public let temperature: Double
    /// Draws the noise rows; nil uses libtorch's default generator.
    public let generator: Generator?
    /// The slice of the global batch's noise rows this rank uses in a data-parallel run.
    public var noiseShard = NoiseShard.whole

    public init(negativeCount: Int, temperature: Double, generator: Generator? = nil) {
        self.negativeCount = negativeCount
        self.temperature = temperature
        self.generator = generator
    }

    public func loss(features: Tensor, indices: Tensor, bank: MemoryBank) throws -> Tensor {
        let noise = try UniformNoise.draw(batch: features.shape[0], count: negativeCount, bankSize: bank.count,
                                          device: features.device, generator: generator, shard: noiseShard)
        return try loss(features: features, indices: indices, noise: noise, bank: bank)
    }

    /// Computes the loss with the noise rows given as `noise` [B, K], int64 bank indices on the bank's device.
    public func loss(features: Tensor, indices: Tensor, noise: Tensor, bank: MemoryBank) throws -> Tensor {
        let batch = features.shape[0]
        UniformNoise.validate(noise, batch: batch, count: negativeCount)

        // Column 0 is the positive, columns 1…K the noise rows: [B, K+1].
        let logits = try UniformNoise.similarities(features: features, indices: indices, noise: noise, bank: bank)
            / temperature
        let target = try Tensor.zeros([batch], dtype: .int64, device: logits.device)
        return try logits.crossEntropy(target: target)
    }
}
