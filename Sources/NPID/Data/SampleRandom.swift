/// A xoshiro256** generator (Blackman and Vigna, 2018) seeded through SplitMix64.
///
/// The sequence depends only on the seed, never on the Swift version, so augmentations are reproducible
/// across toolchains. Integers and doubles are drawn with this type's own methods for the same reason,
/// rather than with `Int.random(in:using:)`, whose algorithm the standard library does not fix.
public struct SampleRandom: RandomNumberGenerator, Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var splitMix = seed
        state = (Self.splitMix64(&splitMix), Self.splitMix64(&splitMix),
                 Self.splitMix64(&splitMix), Self.splitMix64(&splitMix))
    }

    /// Returns the generator for one sample, so that its augmentation is a pure function of
    /// (seed, epoch, dataset index) and does not depend on which worker thread builds it.
    public static func forSample(seed: UInt64, epoch: Int, index: Int) -> SampleRandom {
        SampleRandom(seed: mix(seed, 0x5A4D_504C_4553_0001,
                               UInt64(bitPattern: Int64(epoch)), UInt64(bitPattern: Int64(index))))
    }

    /// Returns the generator for the shuffle of one epoch; the domain constant keeps this stream apart from
    /// every per-sample stream.
    static func forShuffle(seed: UInt64, epoch: Int) -> SampleRandom {
        SampleRandom(seed: mix(seed, 0x5348_5546_464C_0002, UInt64(bitPattern: Int64(epoch)), 0))
    }

    public mutating func next() -> UInt64 {
        let result = rotateLeft(state.1 &* 5, by: 7) &* 9
        let shifted = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= shifted
        state.3 = rotateLeft(state.3, by: 45)
        return result
    }

    /// Returns a double in [0, 1) with 53 random bits.
    public mutating func nextUniform() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// Returns a double uniformly distributed in `range` (the upper bound is reached only by rounding).
    public mutating func nextUniform(in range: ClosedRange<Double>) -> Double {
        range.lowerBound + nextUniform() * (range.upperBound - range.lowerBound)
    }

    /// Returns an integer uniformly distributed in 0..<bound, without modulo bias (Lemire's method).
    mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0, "nextInt(below:) needs a positive bound, got \(bound)")
        let range = UInt64(bound)
        var product = next().multipliedFullWidth(by: range)
        if product.low < range {
            let threshold = (0 &- range) % range
            while product.low < threshold {
                product = next().multipliedFullWidth(by: range)
            }
        }
        return Int(product.high)
    }

    private func rotateLeft(_ value: UInt64, by amount: UInt64) -> UInt64 {
        (value << amount) | (value >> (64 - amount))
    }

    private static func splitMix64(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return finalize(state)
    }

    /// SplitMix64's output function, a bijective avalanche of all 64 bits.
    private static func finalize(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Chains the finalizer over every word, so that changing any word changes the whole result.
    private static func mix(_ seed: UInt64, _ domain: UInt64, _ epoch: UInt64, _ index: UInt64) -> UInt64 {
        var hash = finalize(seed ^ domain)
        hash = finalize((hash &+ 0x9E37_79B9_7F4A_7C15) ^ epoch)
        hash = finalize((hash &+ 0x9E37_79B9_7F4A_7C15) ^ index)
        return hash
    }
}
