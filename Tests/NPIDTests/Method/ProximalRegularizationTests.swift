import Foundation
import Testing
@testable import NPID
import Torch

/// The proximal term λ · mean over the batch of ‖f_i − v_i‖², v_i the sample's bank row.
@Suite struct ProximalRegularizationTests {
    static let bankValues = MethodReference.unitRows(MethodReference.waves(count: 12, phase: 1.4), columns: 3)
    static let featureValues = MethodReference.unitRows(MethodReference.waves(count: 9, phase: -0.6, step: 0.9), columns: 3)
    static let batchIndices = [3, 0, 3]

    @Test func penaltyMatchesSlowLoop() throws {
        let weight = 0.7
        let bank = MemoryBank(features: try MethodTensors.double(Self.bankValues, shape: [4, 3]), momentum: 0.5)

        let penalty = try ProximalRegularization(weight: weight)
            .penalty(features: MethodTensors.double(Self.featureValues, shape: [3, 3]),
                     indices: MethodTensors.indices(Self.batchIndices), bank: bank).item()

        var total = 0.0
        for (b, index) in Self.batchIndices.enumerated() {
            let difference = zip(MethodReference.row(Self.featureValues, b, columns: 3),
                                 MethodReference.row(Self.bankValues, index, columns: 3)).map { $0 - $1 }
            total += MethodReference.dot(difference, difference)
        }
        let expected = weight * total / 3
        #expect(MethodReference.isClose(penalty, expected, relative: 1e-12), "penalty \(penalty), expected \(expected)")
    }

    @Test func featuresEqualToRowsCostNothing() throws {
        let bank = MemoryBank(features: try MethodTensors.float(Self.bankValues, shape: [4, 3]), momentum: 0.5)
        let rows = [2, 1]
        let features = rows.flatMap { MethodReference.row(Self.bankValues, $0, columns: 3) }

        let penalty = try ProximalRegularization(weight: 3)
            .penalty(features: MethodTensors.float(features, shape: [2, 3]), indices: MethodTensors.indices(rows),
                     bank: bank).item()

        #expect(penalty == 0)
    }

    @Test func gradientMatchesFiniteDifferences() throws {
        let bank = MemoryBank(features: try MethodTensors.double(Self.bankValues, shape: [4, 3]), momentum: 0.5)
        let indices = try MethodTensors.indices(Self.batchIndices)
        let proximal = ProximalRegularization(weight: 0.4)
        let point = Self.featureValues

        let features = try MethodTensors.double(point, shape: [3, 3]).requiringGrad()
        try proximal.penalty(features: features, indices: indices, bank: bank).backward()
        let analytic = try MethodTensors.values(try #require(try features.grad))

        let numeric = try MethodReference.numericalGradient(of: { values in
            try withNoGrad {
                try proximal.penalty(features: MethodTensors.double(values, shape: [3, 3]), indices: indices, bank: bank).item()
            }
        }, at: point)
        for i in point.indices {
            #expect(MethodReference.isClose(analytic[i], numeric[i], relative: 1e-6),
                    "d penalty / d f[\(i)]: autograd \(analytic[i]), finite differences \(numeric[i])")
        }
    }
}
