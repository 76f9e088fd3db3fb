import Foundation
import Testing
@testable import NPID
import Torch

/// Stopping a `Trainer` between steps and resuming it, in process: the checkpoint written at
/// the stop must continue the run exactly as if it had never stopped.
///
/// The runs use the full softmax (`negativeCount` 0), so no step draws from libtorch's global
/// generator, which tests running in parallel share. Both runs compared start from the same
/// checkpoint, so their initialisation does not depend on that generator either.
@Suite struct TrainerInterruptTests {
    static let data: TrainingData = {
        var generator = CLIRandom(seed: 31)
        func images(_ count: Int) -> [RGBImage] {
            (0..<count).map { _ in
                RGBImage(width: 8, height: 8, pixels: (0..<(8 * 8 * 3)).map { _ in UInt8(truncatingIfNeeded: generator.next()) })
            }
        }
        let classNames = ["cat", "dog"]
        let train = ImageStore(images: images(10), labels: (0..<10).map { $0 % 2 }, classNames: classNames)
        let test = ImageStore(images: images(4), labels: [0, 1, 0, 1], classNames: classNames)
        return TrainingData(train: train, test: test)
    }()

    /// 10 images in batches of 3: 4 steps per epoch, the last one with a single image.
    static func configuration(epochs: Int = 2) -> TrainingConfiguration {
        var configuration = TrainingConfiguration()
        configuration.model = ModelConfiguration(architecture: .resnet18, stem: .cifar, width: 4, featureDimension: 8)
        configuration.imageSize = 8
        configuration.batchSize = 3
        configuration.negativeCount = 0
        configuration.neighborCount = 3
        configuration.epochs = epochs
        configuration.seed = 9
        return configuration
    }

    static let runtime: RuntimeOptions = {
        var runtime = RuntimeOptions()
        runtime.workers = 0
        return runtime
    }()

    static func trainer(_ folder: URL, epochs: Int = 2, resume: Checkpoint? = nil) throws -> Trainer {
        try Trainer(configuration: configuration(epochs: epochs), runtime: runtime, data: data,
                    runDirectory: folder.path, resume: resume)
    }

    /// Runs `trainer`, asking it to stop once `stopAfter` (epoch, step), counted from 0, is done.
    static func run(_ trainer: Trainer, stopAfter: (epoch: Int, step: Int)?) throws -> TrainingResult {
        var last: (epoch: Int, step: Int)?
        return try trainer.run(shouldStop: {
            guard let stopAfter, let last else { return false }
            return last.epoch == stopAfter.epoch && last.step == stopAfter.step
        }, events: { event in
            if case .step(let progress) = event {
                last = (progress.epoch, progress.step)
            }
        })
    }

    /// Names the parts of the training state that differ, leaving out the generator state,
    /// which tests running in parallel also draw from.
    static func differences(_ a: Checkpoint, _ b: Checkpoint) -> [String] {
        var names: [String] = []
        if a.modelState != b.modelState { names.append("model") }
        if a.momentumBuffers != b.momentumBuffers { names.append("momentum") }
        if a.memoryBank != b.memoryBank { names.append("memory bank") }
        if a.epochsDone != b.epochsDone || a.stepsDone != b.stepsDone || a.stepInEpoch != b.stepInEpoch {
            names.append("counters")
        }
        return names
    }

    @Test(arguments: [2, 4])
    func midEpochStopResumesExactly(stepsTaken: Int) throws {
        let folder = try MethodTestFolder.make()
        let reference = try MethodTestFolder.make()
        defer {
            MethodTestFolder.remove(folder)
            MethodTestFolder.remove(reference)
        }

        // Stop in epoch 2 after `stepsTaken` steps; 4 is after the last step, before the kNN evaluation.
        let stopped = try Self.trainer(folder)
        let stop = #expect(throws: TrainingInterrupted.self) {
            _ = try Self.run(stopped, stopAfter: (1, stepsTaken - 1))
        }
        #expect(stop?.position == TrainingPosition(epochsDone: 1, stepInEpoch: stepsTaken))
        #expect(stop?.stepsPerEpoch == 4)
        #expect(stop?.checkpointPath == folder.path + "/checkpoint.safetensors")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(names == ["checkpoint-epoch1.safetensors", "checkpoint-epoch2-step\(stepsTaken).safetensors",
                          "checkpoint.safetensors", "config.json", "metrics.jsonl"])
        let saved = try Checkpoint.read(contentsOf: folder.path + "/checkpoint.safetensors")
        #expect(saved.epochsDone == 1)
        #expect(saved.stepInEpoch == stepsTaken)
        #expect(saved.stepsDone == 4 + stepsTaken)
        #expect(saved.epochImageCount == min(3 * stepsTaken, 10))
        #expect(saved.epochLossSum > 0)
        #expect(try MetricsLog(path: folder.path + "/metrics.jsonl").read().map(\.epoch) == [1])

        // Reference: epoch 2 straight from the epoch-1 checkpoint of the same run.
        let epochOne = try Checkpoint.read(contentsOf: folder.path + "/checkpoint-epoch1.safetensors")
        let straight = try Self.run(Self.trainer(reference, resume: epochOne), stopAfter: nil)
        let resumed = try Self.run(Self.trainer(folder, resume: saved), stopAfter: nil)

        let straightRecord = try #require(try MetricsLog(path: reference.path + "/metrics.jsonl").read().last)
        let records = try MetricsLog(path: folder.path + "/metrics.jsonl").read()
        #expect(records.map(\.epoch) == [1, 2])
        let resumedRecord = try #require(records.last)
        #expect(resumedRecord.epoch == 2)
        #expect(resumedRecord.loss == straightRecord.loss)
        #expect(resumedRecord.lr == straightRecord.lr)
        #expect(resumedRecord.knnTop1 == straightRecord.knnTop1)
        #expect(resumedRecord.knnTop5 == straightRecord.knnTop5)
        #expect(resumed.bankAccuracy.top1 == straight.bankAccuracy.top1)
        #expect(resumed.recomputedAccuracy.top5 == straight.recomputedAccuracy.top5)
        let final = try Checkpoint.read(contentsOf: folder.path + "/checkpoint.safetensors")
        let straightFinal = try Checkpoint.read(contentsOf: reference.path + "/checkpoint.safetensors")
        #expect(Self.differences(final, straightFinal) == [])
        #expect(final.stepsDone == 8)
    }

    @Test func stopBeforeFirstStepSavesStart() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let trainer = try Self.trainer(folder)

        let stop = #expect(throws: TrainingInterrupted.self) {
            _ = try trainer.run(shouldStop: { true }, events: { _ in })
        }

        #expect(stop?.position == TrainingPosition(epochsDone: 0, stepInEpoch: 0))
        #expect(stop?.description == "training stopped after epoch 0 of 2; \(folder.path)/checkpoint.safetensors contains that state")
        let saved = try Checkpoint.read(contentsOf: folder.path + "/checkpoint-epoch0.safetensors")
        #expect(saved.stepsDone == 0)
        #expect(saved.momentumBuffers.isEmpty)

        // The start state continues into a complete run.
        let result = try Self.run(Self.trainer(folder, resume: saved), stopAfter: nil)
        #expect(try MetricsLog(path: folder.path + "/metrics.jsonl").read().map(\.epoch) == [1, 2])
        #expect(result.bankAccuracy.queryCount == 4)
    }

    @Test func stopAfterLastEpochSavesNothingNew() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        _ = try Self.run(Self.trainer(folder, epochs: 1), stopAfter: nil)
        let before = try Data(contentsOf: folder.appendingPathComponent("checkpoint.safetensors"))

        // Resumed with nothing left to train, the stop comes before the final evaluation.
        let finished = try Checkpoint.read(contentsOf: folder.path + "/checkpoint.safetensors")
        let stop = #expect(throws: TrainingInterrupted.self) {
            _ = try Self.trainer(folder, epochs: 1, resume: finished).run(shouldStop: { true }, events: { _ in })
        }

        #expect(stop?.position == TrainingPosition(epochsDone: 1, stepInEpoch: 0))
        #expect(stop?.description.hasPrefix("training stopped after the last epoch, before the final evaluation; ") == true)
        #expect(try Data(contentsOf: folder.appendingPathComponent("checkpoint.safetensors")) == before)
    }

    @Test func nonFiniteLossKeepsLastCheckpoint() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        _ = try Self.run(Self.trainer(folder, epochs: 1), stopAfter: nil)
        let checkpointPath = folder.path + "/checkpoint.safetensors"
        let before = try Data(contentsOf: URL(fileURLWithPath: checkpointPath))

        // A NaN weight makes every feature, and so the first loss of epoch 2, NaN.
        let trainer = try Self.trainer(folder, resume: Checkpoint.read(contentsOf: checkpointPath))
        let weight = try #require(trainer.network.state.first { $0.name == "fc.weight" }?.tensor)
        try withNoGrad {
            try weight.copy(from: Tensor([Float](repeating: .nan, count: weight.shape.reduce(1, *)), shape: weight.shape))
        }
        let error = #expect(throws: NonFiniteLossError.self) {
            _ = try Self.run(trainer, stopAfter: nil)
        }

        #expect(error?.description == "training stopped: the loss became NaN at epoch 2, step 1; the last good checkpoint \(checkpointPath) is kept (try a lower --lr or a larger --nce-t)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: checkpointPath)) == before)
        #expect(try MetricsLog(path: folder.path + "/metrics.jsonl").read().map(\.epoch) == [1])
    }

    @Test func keepCheckpointsBelowOneIsRejected() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        var runtime = Self.runtime
        runtime.keepCheckpoints = 0

        let error = #expect(throws: UsageError.self) {
            _ = try Trainer(configuration: Self.configuration(), runtime: runtime, data: Self.data,
                            runDirectory: folder.path)
        }

        #expect(error?.message == "--keep-checkpoints must be at least 1, got 0")
    }
}
