import Foundation
import Testing
@testable import NPID

/// SIGINT and SIGTERM sent to a real `npid train`: the run finishes its step, saves a
/// checkpoint, exits with 128 + the signal number and prints the resume command. The resumed
/// run ends exactly where an uninterrupted one does. A second signal exits at once.
///
/// The tests pause npid with SIGSTOP before signalling it, so that what they read from the
/// run folder cannot change until it continues, however slowly the test itself is scheduled.
@Suite struct CLIInterruptTests {
    /// Batches of 2 give 12 steps per epoch on the 24 training images, so a signal sent
    /// during training nearly always lands mid-epoch.
    static let flags = CLIRuns.smallModelFlags + ["-b", "2", "--epochs", "4"]

    /// The uninterrupted run the interrupted ones must match, shared by the tests.
    static let straight = Task<CLITrainedRun, Error> {
        let dataset = try CLIDataset.shared.get()
        let runDirectory = CLISharedFolders.root + "/interrupt-straight"
        let result = try await CLI.run(["train", "--data", dataset.root, "--run-dir", runDirectory] + flags,
                                       in: CLISharedFolders.root)
        return CLITrainedRun(dataset: dataset, runDirectory: runDirectory, result: result)
    }

    static let signalNames = [SIGINT: "SIGINT", SIGTERM: "SIGTERM", SIGHUP: "SIGHUP"]

    @Test(arguments: [SIGINT, SIGTERM, SIGHUP])
    func signalSavesAndResumeMatches(_ signal: Int32) async throws {
        let straight = try await Self.straight.value
        straight.result.expectSuccess()
        let dataset = straight.dataset
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"
        let name = try #require(Self.signalNames[signal])

        let process = try CLIProcess(["train", "--data", dataset.root, "--run-dir", runDirectory] + Self.flags,
                                     in: scratch.path)
        let epochEnded = try await process.waitForStdout(containing: "epoch 1/4 ")
        try #require(epochEnded, "epoch 1 did not finish; stderr: \(process.stderr)")
        try #require(process.pause(), "npid exited before the signal; stdout: \(process.stdout)")
        process.send(signal)
        process.send(SIGCONT)
        let stopped = try await process.finish()

        #expect(!stopped.timedOut)
        #expect(stopped.status == 128 + signal, "stderr: \(stopped.stderr)")
        #expect(stopped.stderrLines.contains("npid: \(name) received: finishing the current step or evaluation and saving a checkpoint; send any of SIGINT, SIGTERM or SIGHUP again to exit at once without saving"),
                "stderr: \(stopped.stderr)")
        #expect(stopped.errorLines.isEmpty)

        // The checkpoint loads, and the last line names its point and the resume command.
        let checkpointPath = runDirectory + "/checkpoint.safetensors"
        let checkpoint = try Checkpoint.read(contentsOf: checkpointPath)
        let position = TrainingPosition(epochsDone: checkpoint.epochsDone, stepInEpoch: checkpoint.stepInEpoch)
        print("\(name) stopped the run \(position)")
        #expect(position >= TrainingPosition(epochsDone: 1, stepInEpoch: 0))
        #expect(position <= TrainingPosition(epochsDone: 4, stepInEpoch: 0))
        var place = "after epoch \(position.epochsDone) of 4"
        if position.stepInEpoch > 0 {
            place = "in epoch \(position.epochsDone + 1) of 4 after step \(position.stepInEpoch) of 12"
        } else if position.epochsDone == 4 {
            place = "after the last epoch, before the final evaluation"
        }
        #expect(stopped.stderrLines.last == "npid: stopped by \(name) \(place); checkpoint \(checkpointPath) contains this state; continue with: npid train --data \(dataset.root) --resume \(runDirectory) --threads 1 --workers 0")
        #expect(try CLIRunFolder.temporaryNames(runDirectory) == [])
        #expect(try CLIRunFolder.names(runDirectory).contains(CheckpointFiles.fileName(for: position)))

        let resumed = try await CLI.run(["train", "--data", dataset.root, "--resume", runDirectory,
                                         "--threads", "1", "--workers", "0"],
                                        in: scratch.path)

        resumed.expectSuccess()
        try CLIRunFolder.expectSameMetrics(runDirectory + "/metrics.jsonl", as: straight.metricsPath)
        #expect(try CLIFiles.bytes(checkpointPath) == CLIFiles.bytes(straight.checkpointPath),
                "the resumed run's final checkpoint differs from the uninterrupted run's")
        // The closing lines: both kNN figures, the checkpoint and the report.
        let straightFolder = URL(fileURLWithPath: straight.checkpointPath).deletingLastPathComponent().path
        #expect(resumed.stdoutLines.suffix(4) == straight.result.stdoutLines.suffix(4).map {
            $0.replacingOccurrences(of: straightFolder, with: runDirectory)
        })
    }

    @Test func secondSignalExitsWithoutSaving() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"
        // Many epochs, so that the run is still training when the signals arrive.
        let flags = CLIRuns.smallModelFlags + ["-b", "2", "--epochs", "50"]

        let process = try CLIProcess(["train", "--data", dataset.root, "--run-dir", runDirectory] + flags,
                                     in: scratch.path)
        let epochEnded = try await process.waitForStdout(containing: "epoch 1/50 ")
        try #require(epochEnded, "epoch 1 did not finish; stderr: \(process.stderr)")
        try #require(process.pause(), "npid exited before the signals; stdout: \(process.stdout)")
        let checkpointPath = runDirectory + "/checkpoint.safetensors"
        let before = try CLIFiles.bytes(checkpointPath)
        let namesBefore = try CLIRunFolder.names(runDirectory).filter { $0.hasPrefix("checkpoint") }
        // Two different signals stay pending side by side (two SIGINTs would merge into one),
        // and both are handled as soon as npid continues, long before its step can finish.
        process.send(SIGINT)
        process.send(SIGTERM)
        process.send(SIGCONT)
        let stopped = try await process.finish()

        #expect(!stopped.timedOut)
        let second = stopped.status == 130 ? "SIGINT" : "SIGTERM"
        let first = second == "SIGINT" ? "SIGTERM" : "SIGINT"
        #expect(stopped.status == 130 || stopped.status == 143, "stderr: \(stopped.stderr)")
        #expect(stopped.stderrLines.suffix(2) == [
            "npid: \(first) received: finishing the current step or evaluation and saving a checkpoint; send any of SIGINT, SIGTERM or SIGHUP again to exit at once without saving",
            "npid: \(second) received after \(first): exiting at once without saving; the checkpoints in \(runDirectory) are as the last completed save left them",
        ])
        // Nothing was saved after the signals, and the latest checkpoint loads.
        #expect(try CLIRunFolder.names(runDirectory).filter { $0.hasPrefix("checkpoint") } == namesBefore)
        #expect(try CLIFiles.bytes(checkpointPath) == before)
        let checkpoint = try Checkpoint.read(contentsOf: checkpointPath)
        #expect(checkpoint.epochsDone >= 1)
    }

    /// A second signal before the first checkpoint prints that there is nothing to resume.
    /// --eval-untrained evaluates before the first step, so the signals land long before the
    /// first save.
    @Test func secondSignalBeforeCheckpointSaysStartAgain() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"
        let flags = CLIRuns.smallModelFlags + ["-b", "2", "--epochs", "50", "--eval-untrained"]

        let process = try CLIProcess(["train", "--data", dataset.root, "--run-dir", runDirectory] + flags,
                                     in: scratch.path)
        let training = try await process.waitForStderr(containing: "training on ")
        try #require(training, "training did not start; stderr: \(process.stderr)")
        try #require(process.pause(), "npid exited before the signals; stderr: \(process.stderr)")
        process.send(SIGINT)
        process.send(SIGTERM)
        process.send(SIGCONT)
        let stopped = try await process.finish()

        #expect(!stopped.timedOut)
        let second = stopped.status == 130 ? "SIGINT" : "SIGTERM"
        let first = second == "SIGINT" ? "SIGTERM" : "SIGINT"
        #expect(stopped.status == 130 || stopped.status == 143, "stderr: \(stopped.stderr)")
        // The signals land during the untrained network's evaluation.
        #expect(stopped.stderrLines.suffix(2) == [
            "npid: \(first) received: finishing the current step or evaluation and saving a checkpoint; send any of SIGINT, SIGTERM or SIGHUP again to exit at once without saving",
            "npid: \(second) received after \(first): exiting at once without saving; no checkpoint was written to \(runDirectory) yet, so start the run again",
        ], "stderr: \(stopped.stderr)")
        #expect(try CLIRunFolder.names(runDirectory).filter { $0.hasPrefix("checkpoint") } == [])
    }

    /// `nohup` starts npid with SIGHUP ignored, and npid leaves it so: the run goes on.
    @Test func hangupUnderNohupIsIgnored() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let flags = CLIRuns.smallModelFlags + ["-b", "2", "--epochs", "50"]

        let process = try CLIProcess(["train", "--data", dataset.root, "--run-dir", scratch.path + "/run"] + flags,
                                     in: scratch.path, launcher: ["/usr/bin/nohup"])
        let epochEnded = try await process.waitForStdout(containing: "epoch 1/50 ")
        try #require(epochEnded, "epoch 1 did not finish; stderr: \(process.stderr)")
        process.send(SIGHUP)
        let trainedOn = try await process.waitForStdout(containing: "epoch 3/50 ")
        process.send(SIGINT)
        let stopped = try await process.finish()

        #expect(trainedOn, "the run did not reach epoch 3 after SIGHUP; stderr: \(stopped.stderr)")
        #expect(stopped.status == 130, "stderr: \(stopped.stderr)")
        #expect(!stopped.stderrLines.contains { $0.hasPrefix("npid: SIGHUP received") }, "stderr: \(stopped.stderr)")
        #expect(stopped.stderrLines.contains { $0.hasPrefix("npid: SIGINT received") }, "stderr: \(stopped.stderr)")
    }
}
