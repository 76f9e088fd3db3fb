import CTorch

// Network layers as functions of their inputs and parameters. Parameter ownership and
// initialisation live with the model code that uses them.
extension Tensor {
    /// 2-d convolution with square kernel, stride and padding. Input [N, C, H, W].
    public func conv2d(weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0) throws -> Tensor {
        try Tensor.make { ct_conv2d(handle, weight.handle, bias?.handle, Int64(stride), Int64(padding), $0) }
    }

    /// Batch normalisation over [N, C, ...]. In training mode the batch statistics are
    /// used and `runningMean`/`runningVar` are updated in place with `momentum`.
    public func batchNorm(weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
                          training: Bool, momentum: Double = 0.1, epsilon: Double = 1e-5) throws -> Tensor {
        try Tensor.make {
            ct_batch_norm(handle, weight?.handle, bias?.handle, runningMean?.handle, runningVar?.handle,
                          training ? 1 : 0, momentum, epsilon, $0)
        }
    }

    /// `self · weightᵀ + bias`. Input [N, in], weight [out, in].
    public func linear(weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
        try Tensor.make { ct_linear(handle, weight.handle, bias?.handle, $0) }
    }

    public func maxPool2d(kernel: Int, stride: Int, padding: Int = 0) throws -> Tensor {
        try Tensor.make { ct_max_pool2d(handle, Int64(kernel), Int64(stride), Int64(padding), $0) }
    }

    public func adaptiveAvgPool2d(height: Int, width: Int) throws -> Tensor {
        try Tensor.make { ct_adaptive_avg_pool2d(handle, Int64(height), Int64(width), $0) }
    }

    /// Mean cross-entropy of logits [B, C] against class indices [B] (int64).
    public func crossEntropy(target: Tensor) throws -> Tensor {
        try Tensor.make { ct_cross_entropy(handle, target.handle, $0) }
    }
}
