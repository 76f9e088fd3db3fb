import Torch

extension BatchNorm2d {
    /// Batch normalisation of `x` [B, C, H, W] with the mean and variance over all ranks'
    /// batches, as PyTorch's SyncBatchNorm. The per-channel sums travel through a
    /// differentiable all-reduce, so the backward pass sums their gradients across ranks too
    /// and each rank gets the gradient of the global batch's loss. Computed in float32; the
    /// variance as E[x²] − E[x]², which loses precision only for channels whose mean is far
    /// larger than their spread.
    func synchronizedBatchNorm(_ x: Tensor, group: ProcessGroup) throws -> Tensor {
        let input = x.dtype == .float32 ? x : try x.to(dtype: .float32)
        let channels = input.shape[1]
        let localCount = input.shape[0] * input.shape[2] * input.shape[3]

        let sums = try input.sum(dims: [0, 2, 3])
        let squares = try (input * input).sum(dims: [0, 2, 3])
        let count = try Tensor.full([1], Double(localCount), device: input.device)
        let totals = try group.differentiableSum(Tensor.cat([sums, squares, count], dim: 0))
        let total = Double(localCount * group.worldSize)

        let mean = try totals.narrowed(dim: 0, start: 0, length: channels) / total
        let variance = try totals.narrowed(dim: 0, start: channels, length: channels) / total - mean * mean
        let scale = try (variance + 1e-5).pow(-0.5) * weight
        let shift = try bias - mean * scale
        let output = try input * scale.reshaped([1, channels, 1, 1]) + shift.reshaped([1, channels, 1, 1])

        // Running statistics as at::batch_norm keeps them: momentum 0.1, unbiased variance.
        try withNoGrad {
            let unbiased = try variance * (total / max(total - 1, 1))
            try runningMean.copy(from: (runningMean * 0.9).adding(mean.detached(), scaledBy: 0.1))
            try runningVar.copy(from: (runningVar * 0.9).adding(unbiased.detached(), scaledBy: 0.1))
        }
        return output.dtype == x.dtype ? output : try output.to(dtype: x.dtype)
    }
}

extension ResNet {
    /// Every batch-norm layer of the network.
    var batchNormLayers: [BatchNorm2d] {
        var layers = [stemNorm]
        for block in stages.joined() {
            layers += block.norms
            if let shortcut = block.shortcut {
                layers.append(shortcut.norm)
            }
        }
        return layers
    }

    /// Makes every batch-norm layer normalise training batches over all ranks of `group`,
    /// or over this process's batch alone when nil.
    public func synchronizeBatchNorm(over group: ProcessGroup?) {
        for layer in batchNormLayers {
            layer.synchronizedGroup = group
        }
    }
}
