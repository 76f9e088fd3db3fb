import Foundation
import Testing
@testable import NPID

/// A network or probe that diverged must stop with one error line, not hand on NaN features
/// or a chance-level accuracy as if they were results.
@Suite struct CLIDivergenceTests {
    @Test func divergedTrainingWritesNoCheckpoint() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"

        // The training loss stays finite at this rate, but batch-norm statistics overflow.
        let result = try await CLI.run(["train", "--data", dataset.root, "--run-dir", runDirectory, "--epochs", "1",
                                        "--lr", "1e6"] + CLIRuns.smallModelFlags, in: scratch.path)

        #expect(result.status == 1, "stderr: \(result.stderr)")
        #expect(result.errorLines == [CLI.errorPrefix + "after epoch 1 the network gives NaN, infinite or zero-length features in evaluation mode, so its weights or batch-norm statistics have overflowed (as with a learning rate far too high); training stopped and no checkpoint had been written yet; start again with a lower --lr or --weight-decay"])
        #expect(!FileManager.default.fileExists(atPath: runDirectory + "/checkpoint.safetensors"))
        #expect(!FileManager.default.fileExists(atPath: runDirectory + "/metrics.jsonl"))
    }

    @Test func divergenceAdviceNamesLargeNceK() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"
        // The default --nce-k 4096 exceeds the training images, as on a small photo folder,
        // so the advice has to name --nce-k besides the learning rate.
        var flags = CLIRuns.smallModelFlags
        let nceKIndex = try #require(flags.firstIndex(of: "--nce-k"))
        flags.removeSubrange(nceKIndex...(nceKIndex + 1))

        let result = try await CLI.run(["train", "--data", dataset.root, "--run-dir", runDirectory, "--epochs", "1",
                                        "--lr", "1e6"] + flags, in: scratch.path)

        #expect(result.status == 1, "stderr: \(result.stderr)")
        #expect(result.errorLines == [CLI.errorPrefix + "after epoch 1 the network gives NaN, infinite or zero-length features in evaluation mode, so its weights or batch-norm statistics have overflowed (as with a learning rate far too high); training stopped and no checkpoint had been written yet; start again with --nce-k 0 (full softmax), since --nce-k 4096 is not smaller than the \(dataset.trainCount) training images, or with a lower --lr or --weight-decay"])
        #expect(result.stderr.contains("so prefer --nce-k 0 (full softmax) here"), "stderr: \(result.stderr)")
    }

    @Test func divergedLinearProbeFails() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["linear", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                        "--lr", "1e38", "--layer", "embedding", "--threads", "1"], in: scratch.path)

        #expect(result.status == 1, "stderr: \(result.stderr)")
        #expect(result.stdout == "")
        let error = try #require(result.errorLines.first, "stderr: \(result.stderr)")
        #expect(error.hasPrefix(CLI.errorPrefix + "the linear probe's loss became NaN in epoch "), "stderr: \(result.stderr)")
        #expect(error.hasSuffix(" with --lr 1e+38; pass a lower --lr"), "stderr: \(result.stderr)")
    }

    @Test func linearOverflowedWeightsFail() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        // The 24 training features make one step per epoch. This decay multiplies the weights
        // by about −1e28 per step, so the third and last step overflows them while every
        // epoch's loss, computed before its step, stays finite.
        let result = try await CLI.run(["linear", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                        "--weight-decay", "1e30", "--epochs", "3", "--threads", "1"], in: scratch.path)

        #expect(result.status == 1, "stderr: \(result.stderr)")
        #expect(result.stdout == "")
        #expect(result.errorLines == [CLI.errorPrefix + "the linear probe's weights became NaN or infinite in epoch 3 with --lr 0.1 and --weight-decay 1e+30; pass a lower --lr or --weight-decay"],
                "stderr: \(result.stderr)")
    }

    @Test func linearRateBeyondFloatIsRejected() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["linear", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                        "--lr", "1e300", "--threads", "1"], in: scratch.path)

        result.expectRejected(status: 2, message: "--lr 1e+300 is beyond float32's range (3.4e38); pass a rate such as 0.03")
    }

    @Test func divergedCheckpointIsNotResumed() async throws {
        let finished = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let run = try CLIRuns.copy(finished, to: scratch.path + "/run")
        let path = run.runDirectory + "/" + Checkpoint.fileName
        // A NaN running variance in the first batch norm, as an overflow leaves behind.
        var checkpoint = try Checkpoint.read(contentsOf: path)
        var variance = try #require(checkpoint.modelState["bn1.running_var"])
        let nan = Float.nan.bitPattern
        variance.bytes = (0..<(variance.bytes.count / 4)).flatMap { _ in
            [UInt8(nan & 0xff), UInt8((nan >> 8) & 0xff), UInt8((nan >> 16) & 0xff), UInt8(nan >> 24)]
        }
        checkpoint.modelState["bn1.running_var"] = variance
        try checkpoint.write(to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))

        let result = try await CLI.run(["train", "--data", run.dataset.root, "--resume", run.runDirectory, "--epochs", "3",
                                        "--workers", "0", "--threads", "1"], in: scratch.path)

        #expect(result.status == 1, "stderr: \(result.stderr)")
        #expect(result.errorLines == [CLI.errorPrefix + "checkpoint \(path) gives NaN, infinite or zero-length features in evaluation mode, so its weights or batch-norm statistics have overflowed (as with a learning rate far too high); resume from an earlier checkpoint of the run (checkpoint-epochN.safetensors copied over it), or start again with a lower --lr or --weight-decay"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "the checkpoint changed")
    }
}
