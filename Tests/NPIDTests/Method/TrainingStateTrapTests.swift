import Foundation
import Testing
@testable import NPID
import Torch

/// Unit length of features and bank rows through real training steps, Z and the bank as
/// state across a resume, and identical runs from identical settings.
@Suite struct TrainingStateTrapTests {
    /// One objective variant, set on top of `TinyRun.configuration()`.
    struct Variant: Sendable, CustomTestStringConvertible {
        let name: String
        let apply: @Sendable (inout TrainingConfiguration) -> Void

        var testDescription: String { name }
    }

    static let variants: [Variant] = [
        Variant(name: "NCE, fixed Z") { _ in },
        Variant(name: "NCE, moving-average Z") {
            $0.normalizationMode = .momentum
            $0.normalizationRate = 0.3
        },
        Variant(name: "softmax-CE") { $0.loss = .softmaxCrossEntropy },
        Variant(name: "full softmax") { $0.negativeCount = 0 },
        Variant(name: "NCE with proximal term") { $0.proximalWeight = 0.5 },
    ]

    static let nceVariants = Array(variants.prefix(2))

    @Test(arguments: variants)
    func featuresAndRowsStayUnitLength(_ variant: Variant) throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let configuration = TinyRun.configuration(variant.apply)
        let data = TinyRun.data(trainCount: 10)
        let trainer = try Trainer(configuration: configuration, runtime: TinyRun.runtime, data: data,
                                  runDirectory: folder.path)
        let loader = TinyRun.trainLoader(trainer)

        for epoch in 0..<2 {
            for batch in loader.epoch(epoch) {
                let images = try TinyRun.augmentedImages(batch.indices, store: data.train, seed: configuration.seed,
                                                         epoch: epoch)
                let features = try withNoGrad { try trainer.network(images, training: true) }
                for (position, norm) in try TinyRun.rowNorms(features).enumerated() {
                    #expect(abs(norm - 1) <= 1e-5, "epoch \(epoch): feature of image \(batch.indices[position]) has norm \(norm)")
                }

                let loss = try trainer.trainStep(batch, learningRate: 0.03, parameters: trainer.network.parameters)

                #expect(loss.isFinite, "epoch \(epoch): loss \(loss)")
                let rows = try trainer.memoryBank.rows(batch.indexTensor(device: .cpu))
                for (position, norm) in try TinyRun.rowNorms(rows).enumerated() {
                    #expect(abs(norm - 1) <= 1e-5, "epoch \(epoch): row \(batch.indices[position]) has norm \(norm) after its update")
                }
            }
            // Every image was visited, so every row has been updated at least once.
            for (index, norm) in try TinyRun.rowNorms(trainer.memoryBank.features).enumerated() {
                #expect(abs(norm - 1) <= 1e-5, "after epoch \(epoch): row \(index) has norm \(norm)")
            }
        }
    }

    @Test(arguments: nceVariants)
    func resumeRestoresZAndBank(_ variant: Variant) throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let configuration = TinyRun.configuration(variant.apply)
        let data = TinyRun.data(trainCount: 10)
        let straight = try Trainer(configuration: configuration, runtime: TinyRun.runtime, data: data,
                                   runDirectory: folder.path + "/straight")
        try FileManager.default.createDirectory(atPath: straight.runDirectory, withIntermediateDirectories: true)
        let straightNCE = try #require(straight.loss as? NCELoss)

        _ = try TinyRun.trainEpoch(straight)
        let savedZ = try #require(straightNCE.normalizationConstant)
        let checkpoint = try Checkpoint.read(contentsOf: straight.checkpointPath)

        // The checkpoint contains Z and the bank exactly as they were.
        #expect(checkpoint.normalizationConstant == savedZ)
        #expect(checkpoint.memoryBank.bytes == (try straight.memoryBank.features.rawBytes()))

        let resumed = try Trainer(configuration: configuration, runtime: TinyRun.runtime, data: data,
                                  runDirectory: folder.path + "/resumed", resume: checkpoint)
        try FileManager.default.createDirectory(atPath: resumed.runDirectory, withIntermediateDirectories: true)
        let resumedNCE = try #require(resumed.loss as? NCELoss)
        #expect(resumedNCE.normalizationConstant == savedZ, "Z after resume")
        #expect(try resumed.memoryBank.features.rawBytes() == checkpoint.memoryBank.bytes, "bank after resume")

        let straightLosses = try TinyRun.trainEpoch(straight)
        let resumedLosses = try TinyRun.trainEpoch(resumed)

        // The second epoch continues the same run, Z included.
        #expect(resumedLosses == straightLosses)
        #expect(resumedNCE.normalizationConstant == straightNCE.normalizationConstant)
        if variant.name == "NCE, fixed Z" {
            #expect(resumedNCE.normalizationConstant == savedZ, "a fixed Z was estimated again after resume")
        } else {
            #expect(resumedNCE.normalizationConstant != savedZ, "the moving-average Z stopped moving")
        }
    }

    @Test func sameSettingsRepeatLossSequence() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let threads = Torch.threadCount
        let data = TinyRun.data(trainCount: 10)

        func losses(seed: UInt64, name: String) throws -> [Double] {
            let configuration = TinyRun.configuration { $0.seed = seed }
            let trainer = try Trainer(configuration: configuration, runtime: TinyRun.runtime, data: data,
                                      runDirectory: folder.path + "/" + name)
            try FileManager.default.createDirectory(atPath: trainer.runDirectory, withIntermediateDirectories: true)
            return try TinyRun.trainEpoch(trainer) + TinyRun.trainEpoch(trainer)
        }
        let first = try losses(seed: 7, name: "first")
        let second = try losses(seed: 7, name: "second")
        let otherSeed = try losses(seed: 8, name: "other-seed")

        try #require(Torch.threadCount == threads, "the thread count changed while the runs trained")
        #expect(first.count == 6)
        #expect(first == second)
        #expect(first != otherSeed)
    }
}
