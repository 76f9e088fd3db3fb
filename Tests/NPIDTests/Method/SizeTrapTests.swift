import Foundation
import Testing
@testable import NPID
import Torch

/// Legal but unusual sizes: K ≥ N, a single training image, a batch larger than the data
/// set, and k above the bank size in the kNN vote.
@Suite struct SizeTrapTests {
    static let losses: [LossFunction] = [.nce, .softmaxCrossEntropy]

    @Test(arguments: losses)
    func negativesAboveBankSizeWarn(_ loss: LossFunction) throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let configuration = TinyRun.configuration {
            $0.loss = loss
            $0.negativeCount = 8
            $0.epochs = 1
        }
        let trainer = try Trainer(configuration: configuration, runtime: TinyRun.runtime,
                                  data: TinyRun.data(trainCount: 5), runDirectory: folder.path)
        var messages: [String] = []
        var stepLosses: [Double] = []

        _ = try trainer.run { event in
            switch event {
            case .message(let text): messages.append(text)
            case .step(let progress): stepLosses.append(progress.loss)
            default: break
            }
        }

        let warning = "warning: --nce-k 8 is not smaller than the 5 training images, so noise samples repeat; the loss can then climb and training diverge, so prefer --nce-k 0 (full softmax) here"
        #expect(messages.filter { $0 == warning }.count == 1, "messages: \(messages)")
        #expect(stepLosses.count == 2)
        #expect(stepLosses.allSatisfy { $0.isFinite }, "losses \(stepLosses)")
    }

    @Test(arguments: TrainingStateTrapTests.variants)
    func singleImageTrains(_ variant: TrainingStateTrapTests.Variant) throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let trainer = try Trainer(configuration: TinyRun.configuration(variant.apply), runtime: TinyRun.runtime,
                                  data: TinyRun.data(trainCount: 1, testCount: 2, classCount: 1),
                                  runDirectory: folder.path)

        let losses = try TinyRun.trainEpoch(trainer) + TinyRun.trainEpoch(trainer)
        let accuracy = try trainer.evaluate(recompute: false)

        #expect(losses.count == 2)
        #expect(losses.allSatisfy { $0.isFinite }, "losses \(losses)")
        let norm = try TinyRun.rowNorms(trainer.memoryBank.features)[0]
        #expect(abs(norm - 1) <= 1e-5, "the only row has norm \(norm)")
        // One class, so every query is classified correctly.
        #expect(accuracy.top1 == 100)
        #expect(accuracy.queryCount == 2)
    }

    @Test(arguments: TrainingStateTrapTests.variants)
    func batchAboveBankSizeTrains(_ variant: TrainingStateTrapTests.Variant) throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let configuration = TinyRun.configuration {
            variant.apply(&$0)
            $0.batchSize = 16
        }
        let trainer = try Trainer(configuration: configuration, runtime: TinyRun.runtime,
                                  data: TinyRun.data(trainCount: 5), runDirectory: folder.path)

        let losses = try TinyRun.trainEpoch(trainer)

        // One step of all five images, which updates every row.
        #expect(losses.count == 1)
        #expect(losses.allSatisfy { $0.isFinite }, "losses \(losses)")
        for (index, norm) in try TinyRun.rowNorms(trainer.memoryBank.features).enumerated() {
            #expect(abs(norm - 1) <= 1e-5, "row \(index) has norm \(norm)")
        }
    }

    @Test(arguments: [false, true])
    func neighborCountAboveBankSizeIsCapped(recompute: Bool) throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let data = TinyRun.data(trainCount: 6, testCount: 6, classCount: 3)
        let trainer = try Trainer(configuration: TinyRun.configuration { $0.neighborCount = 200 },
                                  runtime: TinyRun.runtime, data: data, runDirectory: folder.path)
        _ = try TinyRun.trainEpoch(trainer)

        let accuracy = try trainer.evaluate(recompute: recompute)

        let (queries, reference) = try trainer.evaluationFeatures(recompute: recompute)
        let everyRow = WeightedKNN(neighborCount: data.train.count, temperature: trainer.configuration.temperature)
        let expected = try everyRow.evaluate(queries: queries, queryLabels: data.test.labels, bank: reference,
                                             bankLabels: MethodTensors.indices(data.train.labels), classCount: 3)
        #expect(accuracy == expected)
    }
}
