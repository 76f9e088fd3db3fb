import Foundation
import Testing
@testable import NPID
import Torch

/// The linear probe against a slow full-batch gradient-descent loop written from the
/// softmax-regression formulas, plus a separable case it must solve exactly.
@Suite struct LinearProbeTests {
    static let classCount = 3
    static let featureCount = 4
    static let sampleCount = 9
    static let labels = [0, 1, 2, 0, 1, 2, 2, 1, 0]
    static let features = MethodReference.waves(count: sampleCount * featureCount, phase: 0.7, step: 1.9)
        .enumerated().map { $0.element * (1 + Double($0.offset % featureCount)) }

    /// Standardises each column with its mean and population standard deviation.
    static func standardized(_ values: [Double]) -> [Double] {
        var result = values
        for f in 0..<featureCount {
            let column = (0..<sampleCount).map { values[$0 * featureCount + f] }
            let mean = column.reduce(0, +) / Double(sampleCount)
            let deviation = (column.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(sampleCount)).squareRoot()
            for i in 0..<sampleCount {
                result[i * featureCount + f] = (values[i * featureCount + f] - mean) / deviation
            }
        }
        return result
    }

    /// Runs full-batch SGD with momentum and weight decay on the mean softmax cross-entropy,
    /// with a cosine learning rate, and returns the weight [C][F] and bias [C].
    static func referenceFit(epochs: Int, learningRate: Double, momentum: Double,
                             weightDecay: Double) -> (weight: [[Double]], bias: [Double]) {
        let x = standardized(features)
        var weight = [[Double]](repeating: [Double](repeating: 0, count: featureCount), count: classCount)
        var bias = [Double](repeating: 0, count: classCount)
        var weightBuffer: [[Double]]?
        var biasBuffer: [Double]?
        for epoch in 0..<epochs {
            let rate = learningRate * 0.5 * (1 + cos(Double.pi * Double(epoch) / Double(epochs)))
            var weightGradient = weight.map { $0.map { $0 * weightDecay } }
            var biasGradient = bias.map { $0 * weightDecay }
            for i in 0..<sampleCount {
                let row = MethodReference.row(x, i, columns: featureCount)
                let logits = (0..<classCount).map { MethodReference.dot(weight[$0], row) + bias[$0] }
                let largest = logits.max()!
                let exponentials = logits.map { exp($0 - largest) }
                let total = exponentials.reduce(0, +)
                for c in 0..<classCount {
                    let error = (exponentials[c] / total - (labels[i] == c ? 1 : 0)) / Double(sampleCount)
                    biasGradient[c] += error
                    for f in 0..<featureCount {
                        weightGradient[c][f] += error * row[f]
                    }
                }
            }
            let newWeightBuffer = weightBuffer.map { old in
                zip(old, weightGradient).map { zip($0, $1).map { momentum * $0 + $1 } }
            } ?? weightGradient
            let newBiasBuffer = biasBuffer.map { zip($0, biasGradient).map { momentum * $0 + $1 } } ?? biasGradient
            weightBuffer = newWeightBuffer
            biasBuffer = newBiasBuffer
            weight = zip(weight, newWeightBuffer).map { zip($0, $1).map { $0 - rate * $1 } }
            bias = zip(bias, newBiasBuffer).map { $0 - rate * $1 }
        }
        return (weight, bias)
    }

    static func featureTensor() throws -> Tensor {
        try MethodTensors.float(features, shape: [sampleCount, featureCount])
    }

    @Test func fullBatchFitMatchesSlowLoop() throws {
        var probe = LinearProbe()
        probe.epochs = 3
        probe.batchSize = 64
        probe.learningRate = 0.5
        probe.momentum = 0.9
        probe.weightDecay = 0.01
        let expected = Self.referenceFit(epochs: 3, learningRate: 0.5, momentum: 0.9, weightDecay: 0.01)

        let classifier = try probe.fit(features: Self.featureTensor(), labels: Self.labels, classCount: Self.classCount)

        let weight = try MethodTensors.values(classifier.weight)
        let bias = try MethodTensors.values(classifier.bias)
        for c in 0..<Self.classCount {
            for f in 0..<Self.featureCount {
                #expect(abs(weight[c * Self.featureCount + f] - expected.weight[c][f]) < 1e-5, "weight[\(c)][\(f)]")
            }
            #expect(abs(bias[c] - expected.bias[c]) < 1e-5, "bias[\(c)]")
        }
    }

    @Test func firstEpochLossIsLogOfClassCount() throws {
        var probe = LinearProbe()
        probe.epochs = 1
        probe.batchSize = 64
        var losses: [Double] = []

        _ = try probe.fit(features: Self.featureTensor(), labels: Self.labels, classCount: Self.classCount) { epoch, loss in
            #expect(epoch == 1)
            losses.append(loss)
        }

        // All logits start at zero, so every sample's cross-entropy is log C.
        #expect(losses.count == 1)
        #expect(abs((losses.first ?? 0) - log(Double(Self.classCount))) < 1e-6)
    }

    @Test func standardizationUsesTrainingStatistics() throws {
        let classifier = try LinearProbe().fit(features: Self.featureTensor(), labels: Self.labels,
                                               classCount: Self.classCount)

        let mean = try MethodTensors.values(classifier.mean)
        let deviation = try MethodTensors.values(classifier.standardDeviation)
        for f in 0..<Self.featureCount {
            let column = (0..<Self.sampleCount).map { Self.features[$0 * Self.featureCount + f] }
            let expectedMean = column.reduce(0, +) / Double(Self.sampleCount)
            let expectedDeviation = (column.map { ($0 - expectedMean) * ($0 - expectedMean) }.reduce(0, +)
                / Double(Self.sampleCount)).squareRoot()
            #expect(abs(mean[f] - expectedMean) < 1e-6, "mean[\(f)]")
            #expect(abs(deviation[f] - expectedDeviation) < 1e-5, "deviation[\(f)]")
        }
    }

    @Test func separableClassesAreLearnedExactly() throws {
        // Four classes around the corners of a square, with small deterministic offsets.
        let centres: [[Double]] = [[3, 3], [-3, 3], [-3, -3], [3, -3]]
        func points(_ count: Int, phase: Double) -> (values: [Double], labels: [Int]) {
            let noise = MethodReference.waves(count: count * 2, phase: phase)
            let labels = (0..<count).map { $0 % 4 }
            var values: [Double] = []
            for (i, label) in labels.enumerated() {
                values.append(centres[label][0] + noise[2 * i])
                values.append(centres[label][1] + noise[2 * i + 1])
            }
            return (values, labels)
        }
        let train = points(40, phase: 0.3)
        let test = points(20, phase: 1.1)
        var probe = LinearProbe()
        probe.epochs = 20
        probe.batchSize = 8

        let classifier = try probe.fit(features: MethodTensors.float(train.values, shape: [40, 2]), labels: train.labels,
                                       classCount: 4)
        let accuracy = try classifier.accuracy(features: MethodTensors.float(test.values, shape: [20, 2]),
                                               labels: test.labels, classCount: 4)

        #expect(accuracy.top1 == 100)
        #expect(accuracy.top5 == 100)
        #expect(accuracy.perClassTop1 == [100, 100, 100, 100])
        #expect(accuracy.count == 20)
    }

    @Test func cosineScheduleHalvesAtMidpoint() {
        var probe = LinearProbe()
        probe.epochs = 10
        probe.learningRate = 0.2

        #expect(probe.learningRate(epoch: 0) == 0.2)
        #expect(abs(probe.learningRate(epoch: 5) - 0.1) < 1e-12)
        #expect(probe.learningRate(epoch: 9) < 0.01)
    }

    @Test func invalidSettingsNameTheFlag() {
        var probe = LinearProbe()
        probe.epochs = 0
        #expect(throws: UsageError("--epochs must be at least 1, got 0")) { try probe.validate() }
        probe = LinearProbe()
        probe.momentum = 1
        #expect(throws: UsageError("--momentum must be in [0, 1), got 1.0")) { try probe.validate() }
        probe = LinearProbe()
        probe.learningRate = -1
        #expect(throws: UsageError("--lr must be a positive number, got -1.0")) { try probe.validate() }
    }
}
