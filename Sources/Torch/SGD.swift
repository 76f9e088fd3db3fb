import CTorch

/// One SGD step with momentum and weight decay over `parameters`, PyTorch's rule
/// (dampening 0, no Nesterov):
///
///     d = grad + weightDecay · p;   buf = momentum · buf + d  (buf = d on the first step);   p -= lr · buf
///
/// `momentumBuffers` has one slot per parameter, nil before that parameter's first step.
/// Parameters without a gradient are left alone. The update runs under no-grad with
/// libtorch's multi-tensor (foreach) kernels.
public func sgdStep(parameters: [Tensor], momentumBuffers: inout [Tensor?], learningRate: Double,
                    momentum: Double, weightDecay: Double) throws {
    precondition(momentumBuffers.count == parameters.count, "one momentum buffer slot per parameter")
    let params: [OpaquePointer?] = parameters.map { $0.handle }
    var buffers: [OpaquePointer?] = momentumBuffers.map { $0?.handle }
    let before = buffers
    try withExtendedLifetime((parameters, momentumBuffers)) {
        try check(ct_sgd_step(params, &buffers, Int32(params.count), learningRate, momentum, weightDecay))
    }
    for i in buffers.indices where before[i] == nil {
        if let created = buffers[i] {
            momentumBuffers[i] = Tensor(handle: created)
        }
    }
}
