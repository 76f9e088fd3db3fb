import CTorch

// Reverse-mode differentiation through libtorch's autograd engine.
extension Tensor {
    public var requiresGrad: Bool {
        var flag: Int32 = 0
        precondition(ct_requires_grad(handle, &flag) == 0, "ct_requires_grad failed on a live tensor")
        return flag != 0
    }

    /// Marks this tensor as a leaf whose gradient backward() accumulates.
    @discardableResult
    public func requiringGrad(_ flag: Bool = true) throws -> Tensor {
        try check(ct_requires_grad_(handle, flag ? 1 : 0))
        return self
    }

    /// The accumulated gradient, or nil before the first backward pass.
    public var grad: Tensor? {
        get throws {
            var out: OpaquePointer?
            try check(ct_grad(handle, &out))
            return out.map { Tensor(handle: $0) }
        }
    }

    /// Drops the accumulated gradient (PyTorch's `zero_grad(set_to_none=True)`).
    public func clearGrad() throws {
        try check(ct_clear_grad(handle))
    }

    /// Backpropagates from this one-element tensor into every leaf that requires a gradient.
    public func backward() throws {
        try check(ct_backward(handle))
    }
}

/// Runs `body` with gradient recording off on this thread, restoring the previous mode after.
public func withNoGrad<T>(_ body: () throws -> T) throws -> T {
    var previous: Int32 = 0
    try check(ct_is_grad_enabled(&previous))
    try check(ct_set_grad_enabled(0))
    defer { _ = ct_set_grad_enabled(previous) }
    return try body()
}

/// Runs `body` with libtorch's autocast on for `device`: eligible operators (convolutions,
/// matrix products) compute in `dtype` (bfloat16 or float16) and others keep float32.
/// The previous autocast state of this thread is restored afterwards.
public func withAutocast<T>(device: Device, dtype: DType, _ body: () throws -> T) throws -> T {
    let type = device.code.type
    var wasEnabled: Int32 = 0
    try check(ct_autocast_enter(type, dtype.rawValue, &wasEnabled))
    defer { _ = ct_autocast_exit(type, wasEnabled) }
    return try body()
}
