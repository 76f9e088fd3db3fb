import Foundation
import Testing
@testable import NPID
import Torch

/// The full non-parametric softmax loss, −log P(i | f_i) with
/// P(i | f) = exp(v_i·f / τ) / Σ_j exp(v_j·f / τ), averaged over the batch.
@Suite struct SoftmaxLossTests {
    static let bankSize = 5
    static let dimension = 3
    static let bankValues = MethodReference.unitRows(MethodReference.waves(count: 15, phase: 0.3), columns: 3)
    static let featureValues = MethodReference.unitRows(MethodReference.waves(count: 9, phase: 1.9, step: 0.8),
                                                        columns: 3)
    static let batchIndices = [2, 0, 4]

    /// Computes the loss row by row in `Double` from the definition.
    static func referenceLoss(features: [Double], bank: [Double], indices: [Int], temperature: Double) -> Double {
        var total = 0.0
        for (b, target) in indices.enumerated() {
            let f = MethodReference.row(features, b, columns: dimension)
            let logits = (0..<(bank.count / dimension)).map {
                MethodReference.dot(MethodReference.row(bank, $0, columns: dimension), f) / temperature
            }
            let normalizer = logits.map { exp($0) }.reduce(0, +)
            total += -(logits[target] - log(normalizer))
        }
        return total / Double(indices.count)
    }

    @Test func float32LossMatchesSlowLoop() throws {
        let tau = 0.1
        let bank = MemoryBank(features: try MethodTensors.float(Self.bankValues, shape: [Self.bankSize, Self.dimension]),
                              momentum: 0.5)
        let features = try MethodTensors.float(Self.featureValues, shape: [3, Self.dimension])

        let loss = try NonParametricSoftmaxLoss(temperature: tau)
            .loss(features: features, indices: MethodTensors.indices(Self.batchIndices), bank: bank).item()

        let expected = Self.referenceLoss(features: Self.featureValues, bank: Self.bankValues,
                                          indices: Self.batchIndices, temperature: tau)
        #expect(MethodReference.isClose(loss, expected, relative: 1e-5), "loss \(loss), expected \(expected)")
    }

    @Test func float64LossMatchesSlowLoop() throws {
        let tau = 0.07
        let bank = MemoryBank(features: try MethodTensors.double(Self.bankValues, shape: [Self.bankSize, Self.dimension]),
                              momentum: 0.5)
        let features = try MethodTensors.double(Self.featureValues, shape: [3, Self.dimension])

        let loss = try NonParametricSoftmaxLoss(temperature: tau)
            .loss(features: features, indices: MethodTensors.indices(Self.batchIndices), bank: bank).item()

        let expected = Self.referenceLoss(features: Self.featureValues, bank: Self.bankValues,
                                          indices: Self.batchIndices, temperature: tau)
        #expect(MethodReference.isClose(loss, expected, relative: 1e-12), "loss \(loss), expected \(expected)")
    }

    @Test func identicalRowsGiveLogN() throws {
        let n = 7
        let row = MethodReference.unitRows([0.2, -0.9, 0.4], columns: 3)
        let bank = MemoryBank(features: try MethodTensors.float(Array([[Double]](repeating: row, count: n).joined()),
                                                                shape: [n, 3]),
                              momentum: 0.5)
        let features = try MethodTensors.float(Self.featureValues, shape: [3, 3])

        let loss = try NonParametricSoftmaxLoss(temperature: 0.07)
            .loss(features: features, indices: MethodTensors.indices([6, 0, 3]), bank: bank).item()

        #expect(MethodReference.isClose(loss, log(Double(n)), relative: 1e-6), "loss \(loss), expected log N = \(log(Double(n)))")
    }

    @Test func gradientMatchesFiniteDifferences() throws {
        let tau = 0.5
        let bank = MemoryBank(features: try MethodTensors.double(Self.bankValues, shape: [Self.bankSize, Self.dimension]),
                              momentum: 0.5)
        let indices = try MethodTensors.indices(Self.batchIndices)
        let softmax = NonParametricSoftmaxLoss(temperature: tau)
        let point = Self.featureValues

        let features = try MethodTensors.double(point, shape: [3, Self.dimension]).requiringGrad()
        try softmax.loss(features: features, indices: indices, bank: bank).backward()
        let gradient = try #require(try features.grad)
        let analytic = try MethodTensors.values(gradient)

        let numeric = try MethodReference.numericalGradient(of: { values in
            try withNoGrad {
                try softmax.loss(features: MethodTensors.double(values, shape: [3, Self.dimension]),
                                 indices: indices, bank: bank).item()
            }
        }, at: point)
        for i in point.indices {
            #expect(MethodReference.isClose(analytic[i], numeric[i], relative: 1e-6),
                    "d loss / d f[\(i)]: autograd \(analytic[i]), finite differences \(numeric[i])")
        }
    }
}
