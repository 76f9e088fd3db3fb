import Foundation
import Testing
@testable import NPID
import Torch

/// The memory bank: row i belongs to dataset index i, and an update moves each named row
/// to normalise(m·v_i + (1 − m)·f_i).
@Suite struct MemoryBankTests {
    static let count = 5
    static let dimension = 3
    /// Rows that are deliberately not unit length, as in a freshly initialised bank.
    static let initialRows = MethodReference.waves(count: 15, phase: 0.2, step: 0.9).map { 0.6 * $0 }
    /// Features for dataset indices 3, 0 and 2, in that order.
    static let updateIndices = [3, 0, 2]
    static let batchFeatures = MethodReference.unitRows(MethodReference.waves(count: 9, phase: 2.5), columns: 3)

    static func makeBank(momentum: Double) throws -> MemoryBank {
        MemoryBank(features: try MethodTensors.float(initialRows, shape: [count, dimension]), momentum: momentum)
    }

    /// Computes normalise(m·old + (1 − m)·f) in `Double`.
    static func referenceRow(old: [Double], feature: [Double], momentum: Double) -> [Double] {
        let mixed = zip(old, feature).map { momentum * $0 + (1 - momentum) * $1 }
        let norm = MethodReference.norm(mixed)
        return mixed.map { $0 / norm }
    }

    @Test func updatedRowsFollowMomentumRule() throws {
        let momentum = 0.3
        let bank = try Self.makeBank(momentum: momentum)
        // The bank holds float32, so the reference starts from the float32-rounded rows.
        let stored = try MethodTensors.values(bank.features)

        try bank.update(indices: MethodTensors.indices(Self.updateIndices),
                        with: MethodTensors.float(Self.batchFeatures, shape: [3, Self.dimension]))

        let after = try MethodTensors.values(bank.features)
        for (b, index) in Self.updateIndices.enumerated() {
            let feature = MethodReference.row(Self.batchFeatures, b, columns: Self.dimension).map { Double(Float($0)) }
            let expected = Self.referenceRow(old: MethodReference.row(stored, index, columns: Self.dimension),
                                             feature: feature, momentum: momentum)
            let actual = MethodReference.row(after, index, columns: Self.dimension)
            for j in 0..<Self.dimension {
                #expect(abs(actual[j] - expected[j]) <= 1e-6, "row \(index) column \(j): \(actual[j]), expected \(expected[j])")
            }
        }
    }

    @Test func untouchedRowsStayBitForBit() throws {
        let bank = try Self.makeBank(momentum: 0.5)
        let before = try bank.features.toArray(of: Float.self)

        try bank.update(indices: MethodTensors.indices(Self.updateIndices),
                        with: MethodTensors.float(Self.batchFeatures, shape: [3, Self.dimension]))

        let after = try bank.features.toArray(of: Float.self)
        for index in [1, 4] {
            let range = (index * Self.dimension)..<((index + 1) * Self.dimension)
            #expect(Array(after[range]) == Array(before[range]), "row \(index) changed")
        }
    }

    @Test func updatedRowsHaveUnitLength() throws {
        let bank = try Self.makeBank(momentum: 0.5)

        try bank.update(indices: MethodTensors.indices(Self.updateIndices),
                        with: MethodTensors.float(Self.batchFeatures, shape: [3, Self.dimension]))

        let after = try MethodTensors.values(bank.features)
        for index in Self.updateIndices {
            let norm = MethodReference.norm(MethodReference.row(after, index, columns: Self.dimension))
            #expect(abs(norm - 1) <= 1e-5, "row \(index) has norm \(norm)")
        }
    }

    @Test func zeroMomentumStoresFeaturesInIndexOrder() throws {
        // With m = 0 each named row becomes its own feature, so any mix-up of order shows.
        let bank = try Self.makeBank(momentum: 0)

        try bank.update(indices: MethodTensors.indices(Self.updateIndices),
                        with: MethodTensors.float(Self.batchFeatures, shape: [3, Self.dimension]))

        let after = try MethodTensors.values(bank.features)
        for (b, index) in Self.updateIndices.enumerated() {
            let expected = MethodReference.row(Self.batchFeatures, b, columns: Self.dimension)
            let actual = MethodReference.row(after, index, columns: Self.dimension)
            for j in 0..<Self.dimension {
                #expect(abs(actual[j] - expected[j]) <= 1e-6, "row \(index) column \(j): \(actual[j]), expected feature \(b)")
            }
        }
    }

    @Test func updateLeavesBankOutOfGraph() throws {
        let bank = try Self.makeBank(momentum: 0.5)
        let features = try MethodTensors.float(Self.batchFeatures, shape: [3, Self.dimension]).requiringGrad()

        try bank.update(indices: MethodTensors.indices(Self.updateIndices), with: features * 1.0)

        #expect(!bank.features.requiresGrad)
    }

    @Test func initialRowsLieWithinBound() throws {
        let (count, dimension) = (64, 12)
        let bank = try MemoryBank(count: count, dimension: dimension, momentum: 0.5)
        let bound = 1 / (Double(dimension) / 3).squareRoot()

        let values = try MethodTensors.values(bank.features)

        #expect(bank.features.shape == [count, dimension])
        #expect(values.allSatisfy { abs($0) <= bound }, "a value lies outside ±\(bound)")
        // 768 uniform draws all within half the bound would have probability 2^−768.
        #expect(values.contains { $0 > bound / 2 }, "no value above a/2 = \(bound / 2)")
        #expect(values.contains { $0 < -bound / 2 }, "no value below −a/2 = \(-bound / 2)")
    }

    @Test func rowsAcceptTwoDimensionalIndices() throws {
        let bank = try Self.makeBank(momentum: 0.5)
        let stored = try bank.features.toArray(of: Float.self)
        let picks = [4, 1, 1, 0, 3, 3]

        let rows = try bank.rows(MethodTensors.indices(picks, shape: [3, 2]))

        #expect(rows.shape == [3, 2, Self.dimension])
        let values = try rows.toArray(of: Float.self)
        for (position, index) in picks.enumerated() {
            let expected = Array(stored[(index * Self.dimension)..<((index + 1) * Self.dimension)])
            let actual = Array(values[(position * Self.dimension)..<((position + 1) * Self.dimension)])
            #expect(actual == expected, "position \(position) should hold row \(index)")
        }
    }

    // MARK: an index named twice in one batch

    @Test func duplicateIndexGetsMeanFeature() throws {
        let momentum = 0.4
        let bank = try Self.makeBank(momentum: momentum)
        let stored = try MethodTensors.values(bank.features)
        let indices = [1, 4, 1]

        try bank.update(indices: MethodTensors.indices(indices),
                        with: MethodTensors.float(Self.batchFeatures, shape: [3, Self.dimension]))

        let after = try MethodTensors.values(bank.features)
        let features = (0..<3).map { MethodReference.row(Self.batchFeatures, $0, columns: Self.dimension).map { Double(Float($0)) } }
        let meanOfRowOne = zip(features[0], features[2]).map { ($0 + $1) / 2 }
        let expected = [
            1: Self.referenceRow(old: MethodReference.row(stored, 1, columns: Self.dimension), feature: meanOfRowOne,
                                 momentum: momentum),
            4: Self.referenceRow(old: MethodReference.row(stored, 4, columns: Self.dimension), feature: features[1],
                                 momentum: momentum),
        ]
        for (index, row) in expected {
            let actual = MethodReference.row(after, index, columns: Self.dimension)
            for j in 0..<Self.dimension {
                #expect(abs(actual[j] - row[j]) <= 1e-6, "row \(index) column \(j): \(actual[j]), expected \(row[j])")
            }
        }
        for index in [0, 2, 3] {
            #expect(MethodReference.row(after, index, columns: Self.dimension) == MethodReference.row(stored, index, columns: Self.dimension),
                    "row \(index) changed")
        }
    }

    @Test func duplicateOrderDoesNotMatter() throws {
        let forward = try Self.makeBank(momentum: 0.5)
        let reversed = try Self.makeBank(momentum: 0.5)
        let features = Self.batchFeatures
        let reversedFeatures = [2, 1, 0].flatMap { MethodReference.row(features, $0, columns: Self.dimension) }

        try forward.update(indices: MethodTensors.indices([2, 0, 2]),
                           with: MethodTensors.float(features, shape: [3, Self.dimension]))
        try reversed.update(indices: MethodTensors.indices([2, 0, 2]),
                            with: MethodTensors.float(reversedFeatures, shape: [3, Self.dimension]))

        #expect(try forward.features.toArray(of: Float.self) == reversed.features.toArray(of: Float.self))
    }
}
