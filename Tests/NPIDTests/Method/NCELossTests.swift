import Foundation
import Testing
@testable import NPID
import Torch

/// NCE loss against its definition: with P_m(j) = exp(v_j·f / τ) / Z and P_n = 1/N,
/// h(j) = P_m(j) / (P_m(j) + K·P_n) and
/// loss = −[log h(i) + Σ_noise log(1 − h(j))], averaged over the batch.
///
/// The cases before "explicit noise rows" let the loss draw its noise rows from libtorch's
/// global generator, so each makes the draw irrelevant (all bank rows equal, or N = 1) or
/// checks a property that holds for every possible draw. The later cases pass the rows in.
@Suite struct NCELossTests {
    /// Returns h(s) for one similarity s.
    static func dataProbability(similarity: Double, temperature: Double, z: Double,
                                negatives: Int, bankSize: Int) -> Double {
        let pm = exp(similarity / temperature) / z
        return pm / (pm + Double(negatives) / Double(bankSize))
    }

    /// Computes the batch loss when every column of sample b has similarity `similarities[b]`,
    /// which is the case whenever all bank rows are equal.
    static func referenceLoss(similarities: [Double], temperature: Double, z: Double,
                              negatives: Int, bankSize: Int) -> Double {
        var total = 0.0
        for s in similarities {
            let h = dataProbability(similarity: s, temperature: temperature, z: z,
                                    negatives: negatives, bankSize: bankSize)
            total += -(log(h) + Double(negatives) * log(1 - h))
        }
        return total / Double(similarities.count)
    }

    /// Computes Z = N · mean(exp(s / τ)) over the [B, K + 1] similarities of the first batch, when
    /// every column of sample b has similarity `similarities[b]`.
    static func referenceZ(similarities: [Double], temperature: Double, bankSize: Int) -> Double {
        let mean = similarities.map { exp($0 / temperature) }.reduce(0, +) / Double(similarities.count)
        return Double(bankSize) * mean
    }

    /// Builds a bank of `count` copies of `row`.
    static func repeatedBank(_ row: [Double], count: Int, float64: Bool = false) throws -> MemoryBank {
        let values = Array([[Double]](repeating: row, count: count).joined())
        let features = float64
            ? try MethodTensors.double(values, shape: [count, row.count])
            : try MethodTensors.float(values, shape: [count, row.count])
        return MemoryBank(features: features, momentum: 0.5)
    }

    static let direction = MethodReference.unitRows([0.5, -0.25, 0.75, 0.1], columns: 4)

    @Test func identicalRowsMatchClosedForm() throws {
        let (n, k, tau, z) = (5, 3, 0.5, 7.5)
        let bank = try Self.repeatedBank(Self.direction, count: n)
        let features = try MethodTensors.float(Self.direction + Self.direction, shape: [2, 4])
        let nce = NCELoss(negativeCount: k, temperature: tau, normalizationConstant: z)

        let loss = try nce.loss(features: features, indices: MethodTensors.indices([4, 1]), bank: bank).item()

        // Every similarity is 1, so every column has P_m = p and h = p / (p + K/N).
        let p = exp(1 / tau) / z
        let h = p / (p + Double(k) / Double(n))
        let expected = -log(h) - Double(k) * log(1 - h)
        #expect(MethodReference.isClose(loss, expected, relative: 1e-5), "loss \(loss), expected \(expected)")
    }

    @Test func firstCallEstimatesZ() throws {
        let (n, k, tau) = (6, 4, 0.25)
        let bank = try Self.repeatedBank(Self.direction, count: n)
        let features = try MethodTensors.float(Self.direction + Self.direction + Self.direction, shape: [3, 4])
        let nce = NCELoss(negativeCount: k, temperature: tau)
        #expect(nce.normalizationConstant == nil)

        let loss = try nce.loss(features: features, indices: MethodTensors.indices([0, 2, 5]), bank: bank).item()

        let z = try #require(nce.normalizationConstant)
        let expectedZ = Double(n) * exp(1 / tau)
        #expect(MethodReference.isClose(z, expectedZ, relative: 1e-6), "Z \(z), expected N·exp(1/τ) = \(expectedZ)")
        // With that Z every P_m is 1/N, so h = 1/(1 + K) whatever τ is.
        let h = 1 / (1 + Double(k))
        let expectedLoss = -log(h) - Double(k) * log(1 - h)
        #expect(MethodReference.isClose(loss, expectedLoss, relative: 1e-5), "loss \(loss), expected \(expectedLoss)")
    }

    @Test func secondCallKeepsZ() throws {
        let (n, k, tau) = (4, 2, 0.5)
        let bank = try Self.repeatedBank(Self.direction, count: n)
        let nce = NCELoss(negativeCount: k, temperature: tau)
        let aligned = try MethodTensors.float(Self.direction, shape: [1, 4])
        _ = try nce.loss(features: aligned, indices: MethodTensors.indices([1]), bank: bank)
        let firstZ = try #require(nce.normalizationConstant)

        // Opposite features: similarity −1 everywhere, so a fresh estimate would be N·exp(−1/τ).
        let opposite = try MethodTensors.float(Self.direction.map { -$0 }, shape: [1, 4])
        let loss = try nce.loss(features: opposite, indices: MethodTensors.indices([3]), bank: bank).item()

        #expect(nce.normalizationConstant == firstZ)
        let expected = Self.referenceLoss(similarities: [-1], temperature: tau, z: firstZ, negatives: k, bankSize: n)
        #expect(MethodReference.isClose(loss, expected, relative: 1e-5), "loss \(loss), expected \(expected) with the first Z")
    }

    @Test func singleRowBankMatchesSlowLoop() throws {
        // N = 1: every noise draw is row 0, and K > N is legal.
        let (k, tau, batch, dimension) = (4, 0.3, 3, 3)
        let row = MethodReference.unitRows(MethodReference.waves(count: dimension, phase: 0.4), columns: dimension)
        let bank = try Self.repeatedBank(row, count: 1)
        let featureValues = MethodReference.unitRows(MethodReference.waves(count: batch * dimension, phase: 2.0),
                                                     columns: dimension)
        let features = try MethodTensors.float(featureValues, shape: [batch, dimension])
        let nce = NCELoss(negativeCount: k, temperature: tau)

        let loss = try nce.loss(features: features, indices: MethodTensors.indices([0, 0, 0]), bank: bank).item()

        let similarities = (0..<batch).map {
            MethodReference.dot(row, MethodReference.row(featureValues, $0, columns: dimension))
        }
        let expectedZ = Self.referenceZ(similarities: similarities, temperature: tau, bankSize: 1)
        let z = try #require(nce.normalizationConstant)
        #expect(MethodReference.isClose(z, expectedZ, relative: 1e-5), "Z \(z), expected \(expectedZ)")
        let expected = Self.referenceLoss(similarities: similarities, temperature: tau, z: expectedZ,
                                          negatives: k, bankSize: 1)
        #expect(MethodReference.isClose(loss, expected, relative: 1e-5), "loss \(loss), expected \(expected)")
    }

    @Test func repeatedRowsMatchSlowLoop() throws {
        let (n, k, tau, z, batch) = (6, 10, 0.2, 20.0, 4)
        let bank = try Self.repeatedBank(Self.direction, count: n)
        let featureValues = MethodReference.unitRows(MethodReference.waves(count: batch * 4, phase: -1.1), columns: 4)
        let features = try MethodTensors.float(featureValues, shape: [batch, 4])
        let nce = NCELoss(negativeCount: k, temperature: tau, normalizationConstant: z)

        let loss = try nce.loss(features: features, indices: MethodTensors.indices([5, 0, 3, 3]), bank: bank).item()

        let similarities = (0..<batch).map {
            MethodReference.dot(Self.direction, MethodReference.row(featureValues, $0, columns: 4))
        }
        let expected = Self.referenceLoss(similarities: similarities, temperature: tau, z: z, negatives: k, bankSize: n)
        #expect(MethodReference.isClose(loss, expected, relative: 1e-5), "loss \(loss), expected \(expected)")
    }

    @Test func lossMatchesSomeNoiseCount() throws {
        // Row 0 is aligned with the feature (s = 1) and rows 1…3 are opposite (s = −1), so
        // whatever the draw, the loss is L(c) for c noise draws landing on row 0.
        let (n, k, tau, z) = (4, 5, 0.5, 6.0)
        let opposite = Self.direction.map { -$0 }
        let bank = MemoryBank(features: try MethodTensors.float(Self.direction + opposite + opposite + opposite,
                                                                shape: [n, 4]),
                              momentum: 0.5)
        let features = try MethodTensors.float(Self.direction, shape: [1, 4])
        let nce = NCELoss(negativeCount: k, temperature: tau, normalizationConstant: z)

        func h(_ s: Double) -> Double {
            Self.dataProbability(similarity: s, temperature: tau, z: z, negatives: k, bankSize: n)
        }
        for (positive, positiveSimilarity) in [(0, 1.0), (2, -1.0)] {
            let candidates = (0...k).map { c in
                -log(h(positiveSimilarity)) - Double(c) * log(1 - h(1)) - Double(k - c) * log(1 - h(-1))
            }
            for _ in 0..<8 {
                let loss = try nce.loss(features: features, indices: MethodTensors.indices([positive]), bank: bank).item()
                let matches = candidates.contains { MethodReference.isClose(loss, $0, relative: 1e-5) }
                #expect(matches, "positive row \(positive): loss \(loss) is none of \(candidates)")
            }
        }
    }

    @Test func gradientMatchesFiniteDifferences() throws {
        // float64 throughout; the rows are equal, so the noise draw does not change the loss.
        let (n, k, tau, z, batch, dimension) = (4, 3, 0.5, 3.0, 2, 4)
        let bank = try Self.repeatedBank(Self.direction, count: n, float64: true)
        let indices = try MethodTensors.indices([1, 3])
        let nce = NCELoss(negativeCount: k, temperature: tau, normalizationConstant: z)
        let point = MethodReference.unitRows(MethodReference.waves(count: batch * dimension, phase: 0.7),
                                             columns: dimension)

        let features = try MethodTensors.double(point, shape: [batch, dimension]).requiringGrad()
        try nce.loss(features: features, indices: indices, bank: bank).backward()
        let gradient = try #require(try features.grad)
        let analytic = try MethodTensors.values(gradient)

        let numeric = try MethodReference.numericalGradient(of: { values in
            try withNoGrad {
                try nce.loss(features: MethodTensors.double(values, shape: [batch, dimension]),
                             indices: indices, bank: bank).item()
            }
        }, at: point)
        for i in point.indices {
            #expect(MethodReference.isClose(analytic[i], numeric[i], relative: 1e-6),
                    "d loss / d f[\(i)]: autograd \(analytic[i]), finite differences \(numeric[i])")
        }
    }

    // MARK: explicit noise rows

    static let bankRows = MethodReference.unitRows(MethodReference.waves(count: 6 * 4, phase: 0.45, step: 0.9), columns: 4)
    static let noiseRows = [[2, 5, 0], [4, 4, 1]]

    /// Computes the batch loss from the definition for explicit noise rows.
    static func referenceLoss(features: [Double], indices: [Int], noise: [[Int]], temperature: Double, z: Double) -> Double {
        let bankSize = bankRows.count / 4
        var total = 0.0
        for (b, positive) in indices.enumerated() {
            let f = MethodReference.row(features, b, columns: 4)
            func h(_ row: Int) -> Double {
                dataProbability(similarity: MethodReference.dot(MethodReference.row(bankRows, row, columns: 4), f),
                                temperature: temperature, z: z, negatives: noise[b].count, bankSize: bankSize)
            }
            total += -log(h(positive)) - noise[b].map { log(1 - h($0)) }.reduce(0, +)
        }
        return total / Double(indices.count)
    }

    @Test func explicitNoiseMatchesSlowLoop() throws {
        let (tau, z) = (0.3, 9.0)
        let featureValues = MethodReference.unitRows(MethodReference.waves(count: 8, phase: 1.7), columns: 4)
        let bank = MemoryBank(features: try MethodTensors.double(Self.bankRows, shape: [6, 4]), momentum: 0.5)
        let nce = NCELoss(negativeCount: 3, temperature: tau, normalizationConstant: z)

        let loss = try nce.loss(features: MethodTensors.double(featureValues, shape: [2, 4]),
                                indices: MethodTensors.indices([3, 0]),
                                noise: MethodTensors.indices(Self.noiseRows.flatMap { $0 }, shape: [2, 3]), bank: bank).item()

        // The loss adds ε = 1e-7 to K·P_n, as the original release does, which moves it far less than 1e-6.
        let expected = Self.referenceLoss(features: featureValues, indices: [3, 0], noise: Self.noiseRows,
                                          temperature: tau, z: z)
        #expect(MethodReference.isClose(loss, expected, relative: 1e-6), "loss \(loss), expected \(expected)")
    }

    @Test func explicitNoiseGradientMatchesFiniteDifferences() throws {
        // Distinct bank rows, so unlike the case with equal rows every noise row matters.
        let (tau, z) = (0.4, 5.0)
        let bank = MemoryBank(features: try MethodTensors.double(Self.bankRows, shape: [6, 4]), momentum: 0.5)
        let indices = try MethodTensors.indices([3, 0])
        let noise = try MethodTensors.indices(Self.noiseRows.flatMap { $0 }, shape: [2, 3])
        let nce = NCELoss(negativeCount: 3, temperature: tau, normalizationConstant: z)
        let point = MethodReference.unitRows(MethodReference.waves(count: 8, phase: 0.2), columns: 4)

        let features = try MethodTensors.double(point, shape: [2, 4]).requiringGrad()
        try nce.loss(features: features, indices: indices, noise: noise, bank: bank).backward()
        let analytic = try MethodTensors.values(try #require(try features.grad))

        let numeric = try MethodReference.numericalGradient(of: { values in
            try withNoGrad {
                try nce.loss(features: MethodTensors.double(values, shape: [2, 4]), indices: indices, noise: noise,
                             bank: bank).item()
            }
        }, at: point)
        for i in point.indices {
            #expect(MethodReference.isClose(analytic[i], numeric[i], relative: 1e-6),
                    "d loss / d f[\(i)]: autograd \(analytic[i]), finite differences \(numeric[i])")
        }
    }

    @Test func generatorDecidesNoiseRows() throws {
        // The drawing form must use exactly the rows that the generator gives the explicit form.
        let bank = MemoryBank(features: try MethodTensors.float(Self.bankRows, shape: [6, 4]), momentum: 0.5)
        let features = try MethodTensors.float(MethodReference.unitRows(MethodReference.waves(count: 8, phase: 2.9),
                                                                        columns: 4), shape: [2, 4])
        let indices = try MethodTensors.indices([1, 5])
        let drawing = NCELoss(negativeCount: 20, temperature: 0.2, normalizationConstant: 4, generator: try Generator(seed: 3))
        let explicit = NCELoss(negativeCount: 20, temperature: 0.2, normalizationConstant: 4)
        let noise = try Tensor.randint(0, 6, [2, 20], generator: Generator(seed: 3))

        let drawn = try drawing.loss(features: features, indices: indices, bank: bank).item()
        let given = try explicit.loss(features: features, indices: indices, noise: noise, bank: bank).item()

        #expect(drawn == given)
    }

    // MARK: normalisation constant

    @Test func movingAverageZFollowsRecurrence() throws {
        let (n, k, tau, rate) = (6, 3, 0.5, 0.2)
        let bank = MemoryBank(features: try MethodTensors.double(Self.bankRows, shape: [n, 4]), momentum: 0.5)
        let nce = NCELoss(negativeCount: k, temperature: tau, normalizationUpdate: .movingAverage(rate: rate))
        let noise = [[0, 1, 2], [3, 4, 5]]
        var expectedZ: Double?

        for step in 0..<3 {
            let featureValues = MethodReference.unitRows(MethodReference.waves(count: 8, phase: Double(step)), columns: 4)
            _ = try nce.loss(features: MethodTensors.double(featureValues, shape: [2, 4]), indices: MethodTensors.indices([2, 4]),
                             noise: MethodTensors.indices(noise.flatMap { $0 }, shape: [2, 3]), bank: bank)

            // Ẑ = N · mean of exp(s/τ) over the batch's 2 × (K + 1) columns.
            var sum = 0.0
            for (b, positive) in [2, 4].enumerated() {
                for row in [positive] + noise[b] {
                    let s = MethodReference.dot(MethodReference.row(Self.bankRows, row, columns: 4),
                                                MethodReference.row(featureValues, b, columns: 4))
                    sum += exp(s / tau)
                }
            }
            let estimate = Double(n) * sum / Double(2 * (k + 1))
            expectedZ = expectedZ.map { (1 - rate) * $0 + rate * estimate } ?? estimate
            let z = try #require(nce.normalizationConstant)
            #expect(MethodReference.isClose(z, expectedZ!, relative: 1e-12), "step \(step): Z \(z), expected \(expectedZ!)")
        }
    }

    @Test func zIsFloat64ForBFloat16Features() throws {
        // 1, 0.5 and 0.25 are exact in bfloat16, so the similarities are exact and only the
        // precision of exp and of the mean decides Z. bfloat16 keeps 8 significant bits.
        let bank = MemoryBank(features: try MethodTensors.float([1, 0, 0, 0, 0.5, 0.5, 0.5, 0.5], shape: [2, 4]),
                              momentum: 0.5)
        let features = try MethodTensors.float([1, 0, 0, 0, 0.5, 0.5, 0.5, 0.5], shape: [2, 4]).to(dtype: .bfloat16)
        let (tau, k) = (0.07, 2)
        let nce = NCELoss(negativeCount: k, temperature: tau)

        let loss = try nce.loss(features: features, indices: MethodTensors.indices([0, 1]),
                                noise: MethodTensors.indices([1, 1, 0, 0], shape: [2, 2]), bank: bank)

        // Sample 0: s = 1 (own row), 0.5, 0.5. Sample 1: s = 1, 0.5, 0.5.
        let expectedZ = 2 * (2 * exp(1 / tau) + 4 * exp(0.5 / tau)) / 6
        let z = try #require(nce.normalizationConstant)
        #expect(MethodReference.isClose(z, expectedZ, relative: 1e-6), "Z \(z), expected \(expectedZ)")
        #expect(loss.dtype == .float32, "the loss ran in \(loss.dtype), not the bank's float32")
    }
}
