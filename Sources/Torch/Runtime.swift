import Foundation
import CTorch

#if canImport(Glibc)
import Glibc
#endif

/// Process-wide libtorch settings: version, seeding, threads and the CUDA backend.
public enum Torch {
    public static var version: String {
        var text: UnsafePointer<CChar>?
        guard ct_version(&text) == 0, let text else { return "unknown" }
        return String(cString: text)
    }

    /// Seeds libtorch's default generators (CPU, and CUDA once loaded).
    public static func manualSeed(_ seed: UInt64) throws {
        try check(ct_manual_seed(seed))
    }

    /// Intra-op threads libtorch uses for one operator.
    public static var threadCount: Int {
        var n: Int32 = 0
        guard ct_get_num_threads(&n) == 0 else { return 1 }
        return Int(n)
    }

    public static func setThreadCount(_ n: Int) throws {
        try check(ct_set_num_threads(Int32(n)))
    }

    /// Returns the default CPU generator's state as a uint8 tensor, for checkpoints.
    public static func cpuRandomState() throws -> Tensor {
        try Tensor.make { ct_cpu_rng_state($0) }
    }

    public static func setCPURandomState(_ state: Tensor) throws {
        try check(ct_set_cpu_rng_state(state.handle))
    }

    /// Loads libtorch's CUDA backend and checks that a GPU is there.
    ///
    /// The backend lives in libtorch_cuda.so beside libtorch_cpu.so; it is opened at run
    /// time so that CPU-only machines need none of the CUDA libraries. libtorch caches the
    /// result of the first CUDA query, so this must run before any other CUDA query.
    public static func loadCUDA() throws {
        try cudaLoader.load()
    }

    public static var cudaDeviceCount: Int {
        var n: Int32 = 0
        guard ct_cuda_device_count(&n) == 0 else { return 0 }
        return Int(n)
    }

    /// Peak bytes that libtorch's CUDA caching allocator held on GPU `index` since the
    /// last `resetCUDAMemoryPeaks`: allocated to tensors, and reserved from the driver.
    public static func cudaMemoryPeaks(index: Int) throws -> (allocated: Int, reserved: Int) {
        var allocated: Int64 = 0
        var reserved: Int64 = 0
        try check(ct_cuda_memory_peaks(Int32(index), &allocated, &reserved))
        return (Int(allocated), Int(reserved))
    }

    public static func resetCUDAMemoryPeaks(index: Int) throws {
        try check(ct_cuda_reset_memory_peaks(Int32(index)))
    }

    /// True when the CPU multiplies bfloat16 in hardware (the avx512_bf16 or amx_bf16 flag
    /// in /proc/cpuinfo), where oneDNN runs bfloat16 convolutions faster than float32.
    /// Without those units float32 stays the default, because bfloat16 was only measured
    /// faster on CPUs that have them. False off Linux.
    public static let cpuHasBFloat16Units: Bool = {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else {
            return false
        }
        let names = Set(flags.split(separator: " ").map(String.init))
        return names.contains("avx512_bf16") || names.contains("amx_bf16")
    }()

    /// Waits until all queued GPU work has finished (for timing).
    public static func synchronize(_ device: Device) throws {
        if case .cuda = device {
            try check(ct_cuda_synchronize())
        }
    }
}

private let cudaLoader = CUDALoader()

/// Opens libtorch_cuda.so once per process and remembers the outcome.
private final class CUDALoader: @unchecked Sendable {
    private var result: Result<Void, TorchError>?
    private var lock = pthread_mutex_t()

    init() {
        pthread_mutex_init(&lock, nil)
    }

    func load() throws {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        if result == nil {
            result = Result { try open() }.mapError { $0 as! TorchError }
        }
        try result!.get()
    }

    private func open() throws {
        // NPID_LIBTORCH_CUDA names another libtorch_cuda.so; by default the shim finds the
        // one beside the libtorch_cpu.so this process loaded.
        if let override = getenv("NPID_LIBTORCH_CUDA") {
            try check(ct_cuda_load(override))
        } else {
            try check(ct_cuda_load(nil))
        }
        var available: Int32 = 0
        try check(ct_cuda_is_available(&available))
        if available == 0 {
            throw TorchError("libtorch found no usable CUDA GPU (no NVIDIA driver, or no device visible); use --device cpu")
        }
    }
}
