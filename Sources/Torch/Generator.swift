import CTorch

/// A CPU random generator of its own (libtorch's Mersenne Twister `CPUGeneratorImpl`).
///
/// Draws from it do not interleave with draws from libtorch's default generator, so a
/// training run that uses one repeats exactly even when other code in the process draws
/// random numbers at the same time. libtorch locks the generator for each draw, so threads
/// may share one, though the order of their draws then decides who gets which numbers.
public final class Generator: @unchecked Sendable {
    let handle: OpaquePointer

    public init(seed: UInt64) throws {
        var out: OpaquePointer?
        try check(ct_generator_new(seed, &out))
        handle = out!
    }

    deinit {
        ct_generator_free(handle)
    }

    /// Copies the generator's state into a uint8 tensor, laid out as `Torch.cpuRandomState()` is.
    public func state() throws -> Tensor {
        try Tensor.make { ct_generator_get_state(handle, $0) }
    }

    /// Restores a state returned by `state()` or `Torch.cpuRandomState()`.
    public func setState(_ state: Tensor) throws {
        try check(ct_generator_set_state(handle, state.handle))
    }
}

extension Tensor {
    /// Uniform samples in [0, 1) from `generator`, on the CPU.
    public static func rand(_ shape: [Int], dtype: DType = .float32, generator: Generator) throws -> Tensor {
        let dims = shape.map(Int64.init)
        return try make { ct_rand_generator(dims, Int32(dims.count), dtype.rawValue, generator.handle, $0) }
    }

    /// Int64 samples uniform in `low..<high` from `generator`, on the CPU.
    public static func randint(_ low: Int, _ high: Int, _ shape: [Int], generator: Generator) throws -> Tensor {
        let dims = shape.map(Int64.init)
        return try make { ct_randint_generator(Int64(low), Int64(high), dims, Int32(dims.count), generator.handle, $0) }
    }
}
