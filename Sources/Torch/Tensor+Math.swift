import CTorch

// Element-wise arithmetic, reductions, shapes and indexing. Each call is one ATen
// operator; broadcasting and autograd follow libtorch.
extension Tensor {
    // MARK: arithmetic

    public static func + (lhs: Tensor, rhs: Tensor) throws -> Tensor {
        try make { ct_add(lhs.handle, rhs.handle, 1, $0) }
    }

    public static func - (lhs: Tensor, rhs: Tensor) throws -> Tensor {
        try make { ct_sub(lhs.handle, rhs.handle, $0) }
    }

    public static func * (lhs: Tensor, rhs: Tensor) throws -> Tensor {
        try make { ct_mul(lhs.handle, rhs.handle, $0) }
    }

    public static func / (lhs: Tensor, rhs: Tensor) throws -> Tensor {
        try make { ct_div(lhs.handle, rhs.handle, $0) }
    }

    public static func + (lhs: Tensor, rhs: Double) throws -> Tensor {
        try make { ct_add_scalar(lhs.handle, rhs, $0) }
    }

    public static func - (lhs: Tensor, rhs: Double) throws -> Tensor {
        try make { ct_add_scalar(lhs.handle, -rhs, $0) }
    }

    public static func * (lhs: Tensor, rhs: Double) throws -> Tensor {
        try make { ct_mul_scalar(lhs.handle, rhs, $0) }
    }

    public static func / (lhs: Tensor, rhs: Double) throws -> Tensor {
        try make { ct_div_scalar(lhs.handle, rhs, $0) }
    }

    /// `self + alpha * other`.
    public func adding(_ other: Tensor, scaledBy alpha: Double) throws -> Tensor {
        try Tensor.make { ct_add(handle, other.handle, alpha, $0) }
    }

    public static prefix func - (operand: Tensor) throws -> Tensor {
        try make { ct_neg(operand.handle, $0) }
    }

    public func pow(_ exponent: Double) throws -> Tensor {
        try Tensor.make { ct_pow_scalar(handle, exponent, $0) }
    }

    public func exp() throws -> Tensor { try Tensor.make { ct_exp(handle, $0) } }
    public func log() throws -> Tensor { try Tensor.make { ct_log(handle, $0) } }
    public func sqrt() throws -> Tensor { try Tensor.make { ct_sqrt(handle, $0) } }
    public func relu() throws -> Tensor { try Tensor.make { ct_relu(handle, $0) } }

    /// ReLU in place: no new storage, and autograd still records it.
    public func reluInPlace() throws {
        try check(ct_relu_(handle))
    }

    public func clamp(min: Double) throws -> Tensor {
        try Tensor.make { ct_clamp_min(handle, min, $0) }
    }

    public func equal(_ other: Tensor) throws -> Tensor {
        try Tensor.make { ct_eq(handle, other.handle, $0) }
    }

    /// True when no element is NaN or infinite.
    public func allFinite() throws -> Bool {
        var flag: Int32 = 0
        try check(ct_isfinite_all(handle, &flag))
        return flag != 0
    }

    // MARK: reductions

    public func sum() throws -> Tensor { try Tensor.make { ct_sum(handle, $0) } }
    public func mean() throws -> Tensor { try Tensor.make { ct_mean(handle, $0) } }

    public func sum(dims: [Int], keepDim: Bool = false) throws -> Tensor {
        let axes = dims.map(Int64.init)
        return try Tensor.make { ct_sum_dim(handle, axes, Int32(axes.count), keepDim ? 1 : 0, $0) }
    }

    public func mean(dims: [Int], keepDim: Bool = false) throws -> Tensor {
        let axes = dims.map(Int64.init)
        return try Tensor.make { ct_mean_dim(handle, axes, Int32(axes.count), keepDim ? 1 : 0, $0) }
    }

    /// Returns the p-norm over `dims`.
    public func norm(_ p: Double = 2, dims: [Int], keepDim: Bool = false) throws -> Tensor {
        let axes = dims.map(Int64.init)
        return try Tensor.make { ct_linalg_vector_norm(handle, p, axes, Int32(axes.count), keepDim ? 1 : 0, $0) }
    }

    public func argmax(dim: Int, keepDim: Bool = false) throws -> Tensor {
        try Tensor.make { ct_argmax(handle, Int64(dim), keepDim ? 1 : 0, $0) }
    }

    public func logSumExp(dim: Int, keepDim: Bool = false) throws -> Tensor {
        try Tensor.make { ct_logsumexp(handle, Int64(dim), keepDim ? 1 : 0, $0) }
    }

    public func logSoftmax(dim: Int) throws -> Tensor {
        try Tensor.make { ct_log_softmax(handle, Int64(dim), $0) }
    }

    // MARK: shape

    public func reshaped(_ shape: [Int]) throws -> Tensor {
        let dims = shape.map(Int64.init)
        return try Tensor.make { ct_reshape(handle, dims, Int32(dims.count), $0) }
    }

    /// Returns a view with the dimensions reordered: result dimension i is input dimension `dims[i]`.
    public func permuted(_ dims: [Int]) throws -> Tensor {
        let order = dims.map(Int64.init)
        return try Tensor.make { ct_permute(handle, order, Int32(order.count), $0) }
    }

    public func transposed(_ dim0: Int, _ dim1: Int) throws -> Tensor {
        try Tensor.make { ct_transpose(handle, Int64(dim0), Int64(dim1), $0) }
    }

    /// Returns the transpose of a matrix.
    public func t() throws -> Tensor { try transposed(0, 1) }

    public func unsqueezed(_ dim: Int) throws -> Tensor {
        try Tensor.make { ct_unsqueeze(handle, Int64(dim), $0) }
    }

    public func squeezed(_ dim: Int) throws -> Tensor {
        try Tensor.make { ct_squeeze_dim(handle, Int64(dim), $0) }
    }

    /// Returns a view of `length` entries along `dim`, starting at `start`.
    public func narrowed(dim: Int, start: Int, length: Int) throws -> Tensor {
        try Tensor.make { ct_narrow(handle, Int64(dim), Int64(start), Int64(length), $0) }
    }

    /// Returns the slice at `index` along `dim`, with that dimension removed.
    public func selected(dim: Int, index: Int) throws -> Tensor {
        try Tensor.make { ct_select(handle, Int64(dim), Int64(index), $0) }
    }

    public static func cat(_ tensors: [Tensor], dim: Int) throws -> Tensor {
        let handles: [OpaquePointer?] = tensors.map { $0.handle }
        return try withExtendedLifetime(tensors) {
            try make { ct_cat(handles, Int32(handles.count), Int64(dim), $0) }
        }
    }

    // MARK: indexing

    public func indexSelect(dim: Int, index: Tensor) throws -> Tensor {
        try Tensor.make { ct_index_select(handle, Int64(dim), index.handle, $0) }
    }

    /// Copies the rows of `source` into the rows named by `index`, in place.
    public func indexCopy(dim: Int, index: Tensor, source: Tensor) throws {
        try check(ct_index_copy_(handle, Int64(dim), index.handle, source.handle))
    }

    public func gather(dim: Int, index: Tensor) throws -> Tensor {
        try Tensor.make { ct_gather(handle, Int64(dim), index.handle, $0) }
    }

    /// Returns a copy of `self` with `source` summed into the positions named by `index`.
    public func scatterAdd(dim: Int, index: Tensor, source: Tensor) throws -> Tensor {
        try Tensor.make { ct_scatter_add(handle, Int64(dim), index.handle, source.handle, $0) }
    }

    /// Returns the `k` largest (or smallest) entries along `dim`, sorted, with their indices.
    public func topk(_ k: Int, dim: Int = -1, largest: Bool = true) throws -> (values: Tensor, indices: Tensor) {
        var values: OpaquePointer?
        var indices: OpaquePointer?
        try check(ct_topk(handle, Int64(k), Int64(dim), largest ? 1 : 0, &values, &indices))
        return (Tensor(handle: values!), Tensor(handle: indices!))
    }

    // MARK: linear algebra

    public func matmul(_ other: Tensor) throws -> Tensor {
        try Tensor.make { ct_matmul(handle, other.handle, $0) }
    }

    /// Batched matrix product: [B, n, m] × [B, m, p] → [B, n, p].
    public func bmm(_ other: Tensor) throws -> Tensor {
        try Tensor.make { ct_bmm(handle, other.handle, $0) }
    }

    /// Divides each row by its L2 norm (floored at `epsilon`, as torch.nn.functional.normalize).
    public func l2Normalized(dim: Int = 1, epsilon: Double = 1e-12) throws -> Tensor {
        let norms = try norm(2, dims: [dim], keepDim: true).clamp(min: epsilon)
        return try self / norms
    }
}
