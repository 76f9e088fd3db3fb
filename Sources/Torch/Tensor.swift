import CTorch

/// A libtorch tensor. The Swift object owns one handle and frees it on deinit; copies of
/// the reference share the same storage, as `at::Tensor` copies do.
public final class Tensor: @unchecked Sendable {
    let handle: OpaquePointer

    init(handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        ct_free(handle)
    }

    /// Runs a shim call that writes one new tensor and wraps it.
    @inline(__always)
    static func make(_ body: (UnsafeMutablePointer<OpaquePointer?>) -> Int32) throws -> Tensor {
        var out: OpaquePointer?
        try check(body(&out))
        guard let out else { throw TorchError("libtorch returned no tensor") }
        return Tensor(handle: out)
    }

    // MARK: creation

    /// A CPU tensor holding a copy of `values`, laid out row-major in `shape`.
    public convenience init<T: TensorElement>(_ values: [T], shape: [Int]) throws {
        guard shape.reduce(1, *) == values.count else {
            throw TorchError("shape \(shape) needs \(shape.reduce(1, *)) values, got \(values.count)")
        }
        let dims = shape.map(Int64.init)
        var out: OpaquePointer?
        try values.withUnsafeBytes { raw in
            try check(ct_from_data(raw.baseAddress, T.dtype.rawValue, dims, Int32(dims.count), &out))
        }
        self.init(handle: out!)
    }

    /// A 1-d CPU tensor holding a copy of `values`.
    public convenience init<T: TensorElement>(_ values: [T]) throws {
        try self.init(values, shape: [values.count])
    }

    /// Creates a CPU tensor whose elements are the raw little-endian `bytes` of `dtype` values.
    public convenience init(bytes: UnsafeRawBufferPointer, dtype: DType, shape: [Int]) throws {
        let count = shape.reduce(1, *)
        guard count * dtype.byteSize == bytes.count else {
            throw TorchError("shape \(shape) of \(dtype) needs \(count * dtype.byteSize) bytes, got \(bytes.count)")
        }
        let dims = shape.map(Int64.init)
        var out: OpaquePointer?
        try check(ct_from_data(bytes.baseAddress, dtype.rawValue, dims, Int32(dims.count), &out))
        self.init(handle: out!)
    }

    public static func zeros(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        let dims = shape.map(Int64.init)
        let (type, index) = device.code
        return try make { ct_zeros(dims, Int32(dims.count), dtype.rawValue, type, index, $0) }
    }

    public static func full(_ shape: [Int], _ value: Double, dtype: DType = .float32,
                            device: Device = .cpu) throws -> Tensor {
        let dims = shape.map(Int64.init)
        let (type, index) = device.code
        return try make { ct_full(dims, Int32(dims.count), value, dtype.rawValue, type, index, $0) }
    }

    /// Uniform samples in [0, 1) from libtorch's default generator.
    public static func rand(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        let dims = shape.map(Int64.init)
        let (type, index) = device.code
        return try make { ct_rand(dims, Int32(dims.count), dtype.rawValue, type, index, $0) }
    }

    /// Standard normal samples from libtorch's default generator.
    public static func randn(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        let dims = shape.map(Int64.init)
        let (type, index) = device.code
        return try make { ct_randn(dims, Int32(dims.count), dtype.rawValue, type, index, $0) }
    }

    /// Int64 samples uniform in `low..<high`.
    public static func randint(_ low: Int, _ high: Int, _ shape: [Int], device: Device = .cpu) throws -> Tensor {
        let dims = shape.map(Int64.init)
        let (type, index) = device.code
        return try make { ct_randint(Int64(low), Int64(high), dims, Int32(dims.count), type, index, $0) }
    }

    public static func randperm(_ n: Int, device: Device = .cpu) throws -> Tensor {
        let (type, index) = device.code
        return try make { ct_randperm(Int64(n), type, index, $0) }
    }

    /// 0, 1, ..., end - 1.
    public static func arange(_ end: Int, dtype: DType = .int64, device: Device = .cpu) throws -> Tensor {
        let (type, index) = device.code
        return try make { ct_arange(Int64(end), dtype.rawValue, type, index, $0) }
    }

    // MARK: properties
    // These queries cannot fail on a live handle, so a failure is a broken invariant.

    public var shape: [Int] {
        var rank: Int32 = 0
        precondition(ct_dim(handle, &rank) == 0, "ct_dim failed on a live tensor")
        var sizes = [Int64](repeating: 0, count: Int(rank))
        precondition(ct_sizes(handle, &sizes, rank) == 0, "ct_sizes failed on a live tensor")
        return sizes.map(Int.init)
    }

    public var rank: Int { shape.count }

    public var count: Int {
        var n: Int64 = 0
        precondition(ct_numel(handle, &n) == 0, "ct_numel failed on a live tensor")
        return Int(n)
    }

    public var dtype: DType {
        var code: Int32 = 0
        precondition(ct_dtype(handle, &code) == 0, "ct_dtype failed on a live tensor")
        return DType(rawValue: code)!
    }

    public var device: Device {
        var type: Int32 = 0
        var index: Int32 = 0
        precondition(ct_device(handle, &type, &index) == 0, "ct_device failed on a live tensor")
        return type == CT_CUDA ? .cuda(Int(index)) : .cpu
    }

    public func isContiguous(_ format: MemoryFormat = .contiguous) throws -> Bool {
        var flag: Int32 = 0
        try check(ct_is_contiguous(handle, format.rawValue, &flag))
        return flag != 0
    }

    // MARK: data out

    /// Copies the elements to the host in row-major order. `T` must match `dtype`.
    public func toArray<T: TensorElement>(of type: T.Type = T.self) throws -> [T] {
        guard dtype == T.dtype else {
            throw TorchError("tensor has dtype \(dtype), not \(T.dtype)")
        }
        let n = count
        return try [T](unsafeUninitializedCapacity: n) { buffer, initialized in
            try check(ct_copy_to_host(handle, buffer.baseAddress, n * MemoryLayout<T>.stride))
            initialized = n
        }
    }

    /// Copies the raw little-endian bytes of the elements to the host, in row-major order.
    public func rawBytes() throws -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count * dtype.byteSize)
        try result.withUnsafeMutableBytes { raw in
            try check(ct_copy_to_host(handle, raw.baseAddress, raw.count))
        }
        return result
    }

    /// Returns the value of a one-element tensor.
    public func item() throws -> Double {
        var value = 0.0
        try check(ct_item(handle, &value))
        return value
    }

    public func floats() throws -> [Float] {
        try to(dtype: .float32).toArray()
    }

    public func int64s() throws -> [Int64] {
        try to(dtype: .int64).toArray()
    }

    // MARK: conversion

    public func to(device: Device? = nil, dtype: DType? = nil, nonBlocking: Bool = false) throws -> Tensor {
        let (type, index) = (device ?? self.device).code
        let target = dtype ?? self.dtype
        return try Tensor.make { ct_to(handle, type, index, target.rawValue, nonBlocking ? 1 : 0, $0) }
    }

    public func contiguous(_ format: MemoryFormat = .contiguous) throws -> Tensor {
        try Tensor.make { ct_contiguous(handle, format.rawValue, $0) }
    }

    public func clone() throws -> Tensor {
        try Tensor.make { ct_clone(handle, $0) }
    }

    /// Returns a tensor sharing this storage, cut from the autograd graph.
    public func detached() throws -> Tensor {
        try Tensor.make { ct_detach(handle, $0) }
    }

    /// Copies `source` into this tensor's storage (broadcasting, converting dtype and device).
    public func copy(from source: Tensor) throws {
        try check(ct_copy_(handle, source.handle))
    }

    public func fill(_ value: Double) throws {
        try check(ct_fill_(handle, value))
    }
}
