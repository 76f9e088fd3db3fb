import Foundation
import Testing
@testable import NPID
import Torch

/// Softmax cross-entropy over the positive and K sampled rows:
/// loss = −log(exp(s_0/τ) / Σ_c exp(s_c/τ)) over the columns [positive, noise rows], averaged
/// over the batch. Noise rows are passed in, so no case depends on a random draw.
@Suite struct SoftmaxCrossEntropyLossTests {
    static let dimension = 3
    static let bankValues = MethodReference.unitRows(MethodReference.waves(count: 18, phase: 0.6, step: 1.1), columns: 3)
    static let featureValues = MethodReference.unitRows(MethodReference.waves(count: 6, phase: 2.3, step: 0.7), columns: 3)
    static let batchIndices = [5, 1]
    /// Sample 0 draws its own row 5 among the noise rows, which is legal.
    static let noiseRows = [[0, 5, 3, 3], [2, 4, 0, 1]]

    /// Computes the loss row by row in `Double` from the definition.
    static func referenceLoss(features: [Double], bank: [Double], indices: [Int], noise: [[Int]],
                              temperature: Double) -> Double {
        var total = 0.0
        for (b, positive) in indices.enumerated() {
            let f = MethodReference.row(features, b, columns: dimension)
            let logits = ([positive] + noise[b]).map {
                MethodReference.dot(MethodReference.row(bank, $0, columns: dimension), f) / temperature
            }
            total += -(logits[0] - log(logits.map { exp($0) }.reduce(0, +)))
        }
        return total / Double(indices.count)
    }

    static func noiseTensor() throws -> Tensor {
        try MethodTensors.indices(noiseRows.flatMap { $0 }, shape: [2, 4])
    }

    @Test func lossMatchesSlowLoop() throws {
        let tau = 0.1
        let bank = MemoryBank(features: try MethodTensors.float(Self.bankValues, shape: [6, Self.dimension]), momentum: 0.5)
        let loss = SoftmaxCrossEntropyLoss(negativeCount: 4, temperature: tau)

        let value = try loss.loss(features: MethodTensors.float(Self.featureValues, shape: [2, Self.dimension]),
                                  indices: MethodTensors.indices(Self.batchIndices), noise: Self.noiseTensor(),
                                  bank: bank).item()

        let expected = Self.referenceLoss(features: Self.featureValues, bank: Self.bankValues, indices: Self.batchIndices,
                                          noise: Self.noiseRows, temperature: tau)
        #expect(MethodReference.isClose(value, expected, relative: 1e-5), "loss \(value), expected \(expected)")
    }

    @Test func identicalRowsGiveLogKPlusOne() throws {
        // Every logit is equal, so the softmax is uniform over the K + 1 columns.
        let (n, k) = (4, 6)
        let row = MethodReference.unitRows([0.3, 0.8, -0.1], columns: 3)
        let bank = MemoryBank(features: try MethodTensors.float(Array([[Double]](repeating: row, count: n).joined()),
                                                                shape: [n, 3]),
                              momentum: 0.5)
        let loss = SoftmaxCrossEntropyLoss(negativeCount: k, temperature: 0.07)
        let noise = try MethodTensors.indices([0, 1, 2, 3, 3, 1, 2, 2, 0, 0, 1, 3], shape: [2, k])

        let value = try loss.loss(features: MethodTensors.float(row + row, shape: [2, 3]),
                                  indices: MethodTensors.indices([1, 2]), noise: noise, bank: bank).item()

        #expect(MethodReference.isClose(value, log(Double(k + 1)), relative: 1e-6), "loss \(value), expected log(K + 1) = \(log(Double(k + 1)))")
    }

    @Test func gradientMatchesFiniteDifferences() throws {
        let tau = 0.5
        let bank = MemoryBank(features: try MethodTensors.double(Self.bankValues, shape: [6, Self.dimension]), momentum: 0.5)
        let indices = try MethodTensors.indices(Self.batchIndices)
        let noise = try Self.noiseTensor()
        let loss = SoftmaxCrossEntropyLoss(negativeCount: 4, temperature: tau)
        let point = Self.featureValues

        let features = try MethodTensors.double(point, shape: [2, Self.dimension]).requiringGrad()
        try loss.loss(features: features, indices: indices, noise: noise, bank: bank).backward()
        let analytic = try MethodTensors.values(try #require(try features.grad))

        let numeric = try MethodReference.numericalGradient(of: { values in
            try withNoGrad {
                try loss.loss(features: MethodTensors.double(values, shape: [2, Self.dimension]), indices: indices,
                              noise: noise, bank: bank).item()
            }
        }, at: point)
        for i in point.indices {
            #expect(MethodReference.isClose(analytic[i], numeric[i], relative: 1e-6),
                    "d loss / d f[\(i)]: autograd \(analytic[i]), finite differences \(numeric[i])")
        }
    }

    @Test func generatorDecidesNoiseRows() throws {
        let bank = MemoryBank(features: try MethodTensors.float(Self.bankValues, shape: [6, Self.dimension]), momentum: 0.5)
        let features = try MethodTensors.float(Self.featureValues, shape: [2, Self.dimension])
        let indices = try MethodTensors.indices(Self.batchIndices)
        let drawing = SoftmaxCrossEntropyLoss(negativeCount: 9, temperature: 0.2, generator: try Generator(seed: 4))
        let noise = try Tensor.randint(0, 6, [2, 9], generator: Generator(seed: 4))

        let drawn = try drawing.loss(features: features, indices: indices, bank: bank).item()
        let given = try SoftmaxCrossEntropyLoss(negativeCount: 9, temperature: 0.2)
            .loss(features: features, indices: indices, noise: noise, bank: bank).item()

        #expect(drawn == given)
    }
}
