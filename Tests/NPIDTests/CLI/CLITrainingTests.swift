import Foundation
import Testing
@testable import NPID

/// Tiny real `npid train` runs: the files a run writes, its output, resuming and benchmarking.
@Suite struct CLITrainingTests {
    static let metricsKeys: Set<String> = ["epoch", "loss", "lr", "images_per_s", "knn_top1", "knn_top5", "seconds"]

    @Test func trainWritesRunFolder() async throws {
        let run = try await CLIRuns.twoEpochs.value
        run.result.expectSuccess()

        // metrics.jsonl: one object per epoch, numbered from 1.
        let records = try CLIFiles.jsonLines(run.metricsPath)
        #expect(records.count == 2)
        #expect(records.map { $0["epoch"] as? Int } == [1, 2])
        for record in records {
            #expect(Set(record.keys) == Self.metricsKeys)
            let loss = try #require(record["loss"] as? Double)
            #expect(loss.isFinite)
            #expect(loss > 0)
            let top1 = try #require(record["knn_top1"] as? Double)
            #expect((0...100).contains(top1))
            let top5 = try #require(record["knn_top5"] as? Double)
            #expect((top1...100).contains(top5))
            #expect((record["lr"] as? Double) == 0.03)
            #expect(((record["images_per_s"] as? Double) ?? 0) > 0)
            #expect(((record["seconds"] as? Double) ?? -1) >= 0)
        }

        // config.json decodes as the run's configuration.
        let configuration = try JSONDecoder().decode(TrainingConfiguration.self,
                                                     from: Data(contentsOf: URL(fileURLWithPath: run.configurationPath)))
        #expect(configuration.epochs == 2)
        #expect(configuration.model.width == 8)
        #expect(configuration.model.featureDimension == 16)
        #expect(configuration.negativeCount == 16)
        #expect(configuration.neighborCount == 5)
        #expect(configuration.seed == 5)
    }

    @Test func narrowNetworkTrainsOnTwoThreads() async throws {
        // With NHWC convolutions of 8 channels, libtorch's CPU backward pass corrupted the
        // heap on 2 threads with batches of 15 and 9, and the process aborted.
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["train", "--data", dataset.root, "--run-dir", scratch.path + "/run",
                                        "--epochs", "2", "--width", "8", "--low-dim", "16", "-b", "15",
                                        "--nce-k", "16", "--knn-k", "5", "--workers", "0", "--threads", "2"],
                                       in: scratch.path)

        result.expectSuccess()
        #expect(try CLIFiles.jsonLines(scratch.path + "/run/metrics.jsonl").count == 2)
    }

    @Test func checkpointIsSafetensors() async throws {
        let run = try await CLIRuns.twoEpochs.value
        run.result.expectSuccess()

        // safetensors: an 8-byte little-endian header length, then that many bytes of JSON.
        let bytes = try CLIFiles.bytes(run.checkpointPath)
        try #require(bytes.count > 9)
        let headerLength = CLIFiles.unsignedLittleEndian(bytes[0..<8])
        #expect(bytes[8] == UInt8(ascii: "{"))
        try #require(headerLength <= UInt64(bytes.count - 8))
        let header = try #require(
            try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + Int(headerLength))])) as? [String: Any])
        let metadata = try #require(header["__metadata__"] as? [String: String])
        #expect(metadata["format"] == "swift-npid-checkpoint-1")
        #expect(metadata["epochs_done"] == "2")
        let bank = try #require(header["memory_bank"] as? [String: Any])
        #expect(bank["dtype"] as? String == "F32")
        #expect(bank["shape"] as? [Int] == [run.dataset.trainCount, 16])
    }

    @Test func trainPrintsAccuracyLines() async throws {
        let run = try await CLIRuns.twoEpochs.value
        run.result.expectSuccess()
        let lines = run.result.stdoutLines

        #expect(lines.filter { $0.hasPrefix("epoch 1/2 loss ") }.count == 1, "stdout: \(run.result.stdout)")
        #expect(lines.filter { $0.hasPrefix("epoch 2/2 loss ") }.count == 1, "stdout: \(run.result.stdout)")
        let bankLine = "(memory bank, k=5, \(run.dataset.testCount) test images)"
        #expect(lines.contains { $0.hasPrefix("kNN top-1 ") && $0.hasSuffix(bankLine) }, "stdout: \(run.result.stdout)")
        #expect(lines.contains { $0.hasPrefix("kNN top-1 ") && $0.hasSuffix("(recomputed training features)") },
                "stdout: \(run.result.stdout)")
        #expect(lines.suffix(2) == ["checkpoint: \(run.checkpointPath)", "report: \(run.runDirectory)/report.html"])
        // Errors and warnings go to stderr only.
        #expect(run.result.errorLines.isEmpty)
    }

    @Test(arguments: ["-b", "--batch-size"])
    func batchSizeFlagIsApplied(_ flag: String) async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"

        // The later spelling wins over -b 8 in the shared flags.
        let result = try await CLI.run(["train", "--data", dataset.root, "--run-dir", runDirectory, "--epochs", "1"]
                                           + CLIRuns.smallModelFlags + [flag, "6"],
                                       in: scratch.path)

        result.expectSuccess()
        let configuration = try JSONDecoder().decode(TrainingConfiguration.self,
                                                     from: Data(contentsOf: URL(fileURLWithPath: runDirectory + "/config.json")))
        #expect(configuration.batchSize == 6)
        let steps = dataset.trainCount / 6
        #expect(result.stderr.contains("; \(steps) steps per epoch on cpu"), "stderr: \(result.stderr)")
    }

    @Test func singleStepEpochIsSingular() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        // A batch larger than the training split, as on a small photo folder, gives one step.
        let result = try await CLI.run(["train", "--data", dataset.root, "--run-dir", scratch.path + "/run", "--epochs", "1"]
                                           + CLIRuns.smallModelFlags + ["-b", "\(dataset.trainCount + 1)"],
                                       in: scratch.path)

        result.expectSuccess()
        #expect(result.stderr.contains("; 1 step per epoch on cpu with 1 thread\n"), "stderr: \(result.stderr)")
    }

    @Test func benchStepsWritesNothing() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"

        let result = try await CLI.run(["train", "--data", dataset.root, "--run-dir", runDirectory, "--bench-steps", "2"]
                                           + CLIRuns.smallModelFlags,
                                       in: scratch.path)

        result.expectSuccess()
        #expect(result.stdoutLines.count == 1)
        let line = try #require(result.stdoutLines.first)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(report["event"] as? String == "bench")
        #expect(report["steps"] as? Int == 2)
        #expect(report["batch_size"] as? Int == 8)
        #expect(report["device"] as? String == "cpu")
        #expect(report["threads"] as? Int == 1)
        #expect(((report["images_per_s"] as? Double) ?? 0) > 0)
        #expect(!FileManager.default.fileExists(atPath: runDirectory))
    }

    @Test func keepCheckpointsKeepsNewest() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"

        let result = try await CLI.run(["train", "--data", dataset.root, "--run-dir", runDirectory, "--epochs", "3",
                                        "--keep-checkpoints", "2"] + CLIRuns.smallModelFlags,
                                       in: scratch.path)

        result.expectSuccess()
        // The report files that every epoch refreshes are checked by the report tests.
        let reportFiles: Set = ["report.html", "evaluation.json", "retrieval-successes.png", "retrieval-failures.png",
                                "tensorboard"]
        #expect(try FileManager.default.contentsOfDirectory(atPath: runDirectory).filter { !reportFiles.contains($0) }.sorted()
                == ["checkpoint-epoch2.safetensors", "checkpoint-epoch3.safetensors", "checkpoint.safetensors",
                    "config.json", "metrics.jsonl"])
        #expect(try CLIFiles.bytes(runDirectory + "/checkpoint.safetensors")
                == CLIFiles.bytes(runDirectory + "/checkpoint-epoch3.safetensors"))
    }

    @Test func nonFiniteLossStopsTheRun() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"

        // exp(v·f / τ) overflows for so small a τ, so the first loss is already NaN.
        let result = try await CLI.run(["train", "--data", dataset.root, "--run-dir", runDirectory, "--epochs", "2"]
                                           + CLIRuns.smallModelFlags + ["--nce-t", "1e-30"],
                                       in: scratch.path)

        #expect(!result.timedOut)
        #expect(result.status == 1, "stderr: \(result.stderr)")
        #expect(result.stdout == "")
        #expect(result.errorLines == ["npid: error: training stopped: the loss became NaN at epoch 1, step 1; no checkpoint had been written yet (try a lower --lr or a larger --nce-t)"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: runDirectory) == ["config.json"])
    }

    // MARK: Resume

    @Test func optimizerFlagsReachConfiguration() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"

        let result = try await CLI.run(["train", "--data", dataset.root, "--run-dir", runDirectory, "--epochs", "1",
                                        "--momentum", "0.5", "--weight-decay", "0"] + CLIRuns.smallModelFlags,
                                       in: scratch.path)

        result.expectSuccess()
        let configuration = try JSONDecoder().decode(TrainingConfiguration.self,
                                                     from: Data(contentsOf: URL(fileURLWithPath: runDirectory + "/config.json")))
        #expect(configuration.sgdMomentum == 0.5)
        #expect(configuration.weightDecay == 0)
    }

    @Test func resumeNotesChangedPlan() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"
        let first = try await CLI.run(["train", "--data", dataset.root, "--run-dir", runDirectory, "--epochs", "1",
                                       "--schedule", "cosine"] + CLIRuns.smallModelFlags, in: scratch.path)
        first.expectSuccess()

        let longer = try await CLI.run(["train", "--data", dataset.root, "--resume", runDirectory, "--epochs", "2",
                                        "--workers", "0", "--threads", "1", "--eval-untrained"], in: scratch.path)

        longer.expectSuccess()
        #expect(longer.stderrLines.contains("note: --eval-untrained measures the network before its first step, which this run has passed, so it is skipped"),
                "stderr: \(longer.stderr)")
        #expect(longer.stderrLines.contains("note: the cosine schedule now spans 2 epochs instead of 1, so the learning rate jumps to the new curve here; a run of 2 epochs from the start would differ"),
                "stderr: \(longer.stderr)")
    }

    @Test func resumeIntoNewFolderCopiesRun() async throws {
        let finished = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let fork = scratch.path + "/fork"

        let result = try await CLI.run(["train", "--data", finished.dataset.root, "--resume", finished.runDirectory,
                                        "--run-dir", fork, "--workers", "0", "--threads", "1"], in: scratch.path)

        result.expectSuccess()
        for name in [Checkpoint.fileName, "metrics.jsonl"] {
            let copy = try Data(contentsOf: URL(fileURLWithPath: fork + "/" + name))
            let original = try Data(contentsOf: URL(fileURLWithPath: finished.runDirectory + "/" + name))
            #expect(copy == original, "\(name) differs from the resumed run's")
        }
        #expect(result.stdoutLines.suffix(2) == ["checkpoint: \(fork)/\(Checkpoint.fileName)",
                                                 "report: not written yet; write it with npid report \(fork)"])
    }

    @Test func resumeChecksMetricsLogReachesCheckpoint() async throws {
        let finished = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let behind = try CLIRuns.copy(finished, to: scratch.path + "/behind")
        let empty = try CLIRuns.copy(finished, to: scratch.path + "/empty")
        let behindLog = behind.runDirectory + "/metrics.jsonl"
        let firstLine = try String(contentsOfFile: behindLog, encoding: .utf8).split(separator: "\n")[0]
        try (firstLine + "\n").write(toFile: behindLog, atomically: true, encoding: .utf8)
        try "".write(toFile: empty.runDirectory + "/metrics.jsonl", atomically: true, encoding: .utf8)

        let gap = try await CLI.run(["train", "--data", finished.dataset.root, "--resume", behind.runDirectory,
                                     "--epochs", "3", "--workers", "0", "--threads", "1"], in: scratch.path)
        let restart = try await CLI.run(["train", "--data", finished.dataset.root, "--resume", empty.runDirectory,
                                         "--epochs", "3", "--workers", "0", "--threads", "1"], in: scratch.path)

        gap.expectRejected(status: 1, message: "metrics log \(behindLog) ends at epoch 1, but the checkpoint is after epoch 2, so epoch 2 would be missing; restore the missing records, or delete \(behindLog) to resume without the earlier epochs' records")
        #expect(try String(contentsOfFile: behindLog, encoding: .utf8) == firstLine + "\n")
        restart.expectSuccess()
        #expect(restart.stderrLines.contains("warning: \(empty.runDirectory)/metrics.jsonl records none of the 2 epochs before the checkpoint, so the report's curves will start at epoch 3"),
                "stderr: \(restart.stderr)")
    }

    @Test func resumeContinuesTheSameRun() async throws {
        let straight = try await CLIRuns.twoEpochs.value
        let dataset = straight.dataset
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"

        let first = try await CLI.run(["train", "--data", dataset.root, "--run-dir", runDirectory, "--epochs", "1"]
                                          + CLIRuns.smallModelFlags,
                                      in: scratch.path)
        first.expectSuccess()
        // Only --epochs changes, and the runtime flags that make the run reproducible.
        let resumed = try await CLI.run(["train", "--data", dataset.root, "--resume", runDirectory, "--epochs", "2",
                                         "--workers", "0", "--threads", "1"],
                                        in: scratch.path)
        resumed.expectSuccess()
        #expect(resumed.stderr.contains("resuming \(runDirectory) after epoch 1 of 2"), "stderr: \(resumed.stderr)")
        #expect(resumed.stdoutLines.filter { $0.hasPrefix("epoch 1/") }.isEmpty, "epoch 1 was trained again")
        #expect(resumed.stdoutLines.filter { $0.hasPrefix("epoch 2/2 loss ") }.count == 1)

        let records = try CLIFiles.jsonLines(runDirectory + "/metrics.jsonl")
        #expect(records.map { $0["epoch"] as? Int } == [1, 2])
        let configuration = try JSONDecoder().decode(TrainingConfiguration.self,
                                                     from: Data(contentsOf: URL(fileURLWithPath: runDirectory + "/config.json")))
        #expect(configuration.epochs == 2)

        // On one CPU thread the resumed run must repeat the straight run exactly, because the
        // checkpoint contains the weights, SGD momentum, memory bank, NCE constant and generator state.
        let straightRecords = try CLIFiles.jsonLines(straight.metricsPath)
        try #require(records.count == 2 && straightRecords.count == 2)
        let resumedLosses = records.map { $0["loss"] as? Double }
        let straightLosses = straightRecords.map { $0["loss"] as? Double }
        #expect(resumedLosses[0] == straightLosses[0], "epoch 1 differs before any resume")
        #expect(resumedLosses[1] == straightLosses[1], "epoch 2 after resuming differs from the straight run")
        #expect(records[1]["knn_top1"] as? Double == straightRecords[1]["knn_top1"] as? Double)
        #expect(try CLIFiles.bytes(runDirectory + "/checkpoint.safetensors") == CLIFiles.bytes(straight.checkpointPath))
    }

    @Test func resumeRejectsDifferentWidth() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let run = try CLIRuns.copy(try await CLIRuns.twoEpochs.value, to: scratch.path + "/run")
        let before = try CLIFiles.snapshot(run.runDirectory)

        let result = try await CLI.run(["train", "--data", run.dataset.root, "--resume", run.runDirectory,
                                        "--epochs", "3", "--width", "16"],
                                       in: scratch.path)

        result.expectRejected(status: 2, message: "--width 16 contradicts the checkpoint in \(run.runDirectory), which was trained with 8; drop --width to resume, or start a new --run-dir")
        #expect(try CLIFiles.snapshot(run.runDirectory) == before, "the run folder changed")
    }

    @Test func resumeRejectsDifferentSeed() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let run = try CLIRuns.copy(try await CLIRuns.twoEpochs.value, to: scratch.path + "/run")
        let before = try CLIFiles.snapshot(run.runDirectory)

        let result = try await CLI.run(["train", "--data", run.dataset.root, "--resume", run.runDirectory,
                                        "--epochs", "3", "--seed", "6"],
                                       in: scratch.path)

        result.expectRejected(status: 2, message: "--seed 6 contradicts the checkpoint in \(run.runDirectory), which was trained with 5; drop --seed to resume, or start a new --run-dir")
        #expect(try CLIFiles.snapshot(run.runDirectory) == before, "the run folder changed")
    }
}
