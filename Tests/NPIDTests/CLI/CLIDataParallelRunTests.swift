import Foundation
import Testing
@testable import NPID

/// `npid train --nproc 2` as real processes on loopback: the same result as one process with
/// the global batch, and a run stopped mid-epoch by SIGINT to the launcher that continues
/// with a different number of ranks.
@Suite struct CLIDataParallelRunTests {
    static let modelFlags = ["--width", "16", "--low-dim", "16", "--nce-k", "16", "--knn-k", "5",
                             "--seed", "5", "--workers", "0", "--threads", "1"]

    @Test func twoRanksMatchOneProcess() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let pairDirectory = scratch.path + "/pair"
        let singleDirectory = scratch.path + "/single"

        // --sync-bn on one process changes nothing, because its batch norm already normalises
        // over the whole batch; it is passed so that both runs record the same configuration.
        // NCHW, because channels-last convolutions sum in another order, and the NCE gradient at
        // initialisation amplifies that: one step of the reference PyTorch 2.11 model on 10
        // images gives gradients 1-2% apart between the two layouts. With channels-last the pair
        // drifted to 0.027 in the bank and 0.45% in the loss after these 3 steps.
        // float32 as well, because bfloat16 (the default on CPUs with bfloat16 units) rounds
        // each rank's half batch differently from the whole batch.
        let flags = ["--sync-bn", "--epochs", "1", "--no-channels-last", "--precision", "fp32"] + Self.modelFlags
        let pair = try await CLI.run(["train", "--data", dataset.root, "--run-dir", pairDirectory, "--nproc", "2",
                                      "-b", "4"] + flags, in: scratch.path)
        pair.expectSuccess()
        let single = try await CLI.run(["train", "--data", dataset.root, "--run-dir", singleDirectory, "-b", "8"] + flags,
                                       in: scratch.path)
        single.expectSuccess()
        #expect(single.stderr.contains("warning: --sync-bn does nothing in a run of one process;"))
        #expect(!pair.stderr.contains("--sync-bn does nothing"))

        let pairCheckpoint = try Checkpoint.read(contentsOf: pairDirectory + "/" + Checkpoint.fileName)
        let singleCheckpoint = try Checkpoint.read(contentsOf: singleDirectory + "/" + Checkpoint.fileName)
        #expect(pairCheckpoint.worldSize == 2)
        #expect(singleCheckpoint.worldSize == 1)
        #expect(pairCheckpoint.stepsDone == 3, "an epoch of 24 / (2 × 4) steps")
        #expect(singleCheckpoint.stepsDone == 3, "an epoch of 24 / 8 steps")

        // Both runs compute the same three steps, but float32 sums run in another order
        // (per-rank convolutions, the synchronised batch norm's E[x²] − E[x]² against libtorch's
        // Welford variance, the all-reduce). Measured on a 2-core x86 CPU: the banks differed by
        // up to 7.9e-5 and the losses by 1.4e-5 relative. Per-rank batch norm (no --sync-bn)
        // instead moves the bank by 0.16 and the loss by 2%.
        let tolerance = 5e-4
        let pairBank = try pairCheckpoint.memoryBank.values(as: Float.self)
        let singleBank = try singleCheckpoint.memoryBank.values(as: Float.self)
        #expect(pairBank.count == dataset.trainCount * 16)
        #expect(pairBank.count == singleBank.count)
        let bankDifference = zip(pairBank, singleBank).map { abs(Double($0) - Double($1)) }.max() ?? .infinity
        #expect(bankDifference <= tolerance, "the banks differ by up to \(bankDifference)")

        let pairLosses = try CLIFiles.jsonLines(pairDirectory + "/metrics.jsonl").compactMap { $0["loss"] as? Double }
        let singleLosses = try CLIFiles.jsonLines(singleDirectory + "/metrics.jsonl").compactMap { $0["loss"] as? Double }
        #expect(pairLosses.count == 1)
        #expect(singleLosses.count == 1)
        for (epoch, (mine, theirs)) in zip(pairLosses, singleLosses).enumerated() {
            #expect(abs(mine - theirs) <= tolerance * max(1, abs(theirs)),
                    "epoch \(epoch + 1): loss \(mine) on 2 ranks against \(theirs) alone")
        }
    }

    /// Batch 2 per rank: 6 global steps per epoch on 2 ranks, 12 steps alone.
    static let batchSize = 2
    /// Far more epochs than the tries need, because on a starved machine the test may notice
    /// an epoch's line only several epochs later, and every try continues the same run.
    static let epochs = 400

    @Test(arguments: zip([2, 1], [1, 2]))
    func midEpochStopResumesWithOtherRanks(firstRanks: Int, resumedRanks: Int) async throws {
        let ranks = (first: firstRanks, resumed: resumedRanks)
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"

        let saved = try await Self.stopMidEpoch(dataset: dataset, runDirectory: runDirectory, ranks: ranks.first,
                                                in: scratch.path)
        try #require(saved.stepInEpoch > 0, "no stop landed mid-epoch")
        #expect(saved.worldSize == ranks.first)
        #expect(saved.epochImageCount == saved.stepInEpoch * ranks.first * Self.batchSize,
                "stopped after \(saved.stepInEpoch) steps of \(ranks.first) × \(Self.batchSize) images")

        // The resumed run finishes the stopped epoch only.
        let epochs = saved.epochsDone + 1
        var arguments = ["train", "--data", dataset.root, "--resume", runDirectory, "--epochs", String(epochs),
                         "--workers", "0", "--threads", "1"]
        if ranks.resumed > 1 {
            arguments += ["--nproc", String(ranks.resumed)]
        }
        let resumed = try await CLI.run(arguments, in: scratch.path)
        resumed.expectSuccess()
        // Rank 0 alone reports for the run, so neither the launcher nor the other ranks repeat the position.
        let resumeLines = resumed.stderrLines.filter { $0.hasPrefix("resuming \(runDirectory) ") }
        #expect(resumeLines.count == 1, "stderr: \(resumed.stderr)")
        // The step counts the stopped run's global batches, so the line names its ranks and images.
        let rankWord = ranks.first == 1 ? "rank" : "ranks"
        #expect(resumeLines.first == "resuming \(runDirectory) in epoch \(saved.epochsDone + 1) of \(epochs) after \(saved.epochImageCount) images (step \(saved.stepInEpoch) on \(ranks.first) \(rankWord))")
        let final = try Checkpoint.read(contentsOf: runDirectory + "/" + Checkpoint.fileName)
        #expect(final.worldSize == ranks.resumed)
        #expect(final.epochsDone == epochs)
        #expect(final.stepInEpoch == 0)

        // The resumed run takes the rest of the epoch's order in its own global batches. It fills
        // up the last one from the start of the order, whose images were seen before the stop.
        let remaining = dataset.trainCount - saved.epochImageCount
        let globalBatch = ranks.resumed * Self.batchSize
        let steps = (remaining + globalBatch - 1) / globalBatch
        let padding = steps * globalBatch - remaining
        #expect(final.stepsDone == saved.stepsDone + steps,
                "\(remaining) images left after the stop take \(steps) steps of \(globalBatch)")
        #expect(padding == 0 || ranks.resumed > 1, "one process takes a short last batch instead of padding")

        // Each image of the rest of the epoch, and each padding image, moves its bank row once,
        // so the images seen before the stop and not reused as padding keep their rows.
        let dimension = 16
        let before = try saved.memoryBank.values(as: Float.self)
        let after = try final.memoryBank.values(as: Float.self)
        var changedRows = 0
        for row in 0..<dataset.trainCount {
            let range = (row * dimension)..<((row + 1) * dimension)
            if Array(before[range]) != Array(after[range]) {
                changedRows += 1
            }
        }
        #expect(changedRows == remaining + padding,
                "\(changedRows) bank rows changed; \(remaining) images were left and \(padding) padded")

        let records = try CLIFiles.jsonLines(runDirectory + "/metrics.jsonl")
        #expect(records.count == epochs)
        #expect(records.last?["epoch"] as? Int == epochs)
    }

    /// Waits up to 5 s for the run's report.html to be written after `date`.
    static func waitForReport(in runDirectory: String, newerThan date: Date) async throws {
        let started = Date()
        while Date().timeIntervalSince(started) < 5 {
            let attributes = try? FileManager.default.attributesOfItem(atPath: runDirectory + "/report.html")
            if let written = attributes?[.modificationDate] as? Date, written > date {
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Starts or resumes a run on `ranks` processes, sends SIGINT to it (the launcher when
    /// there are several) once an epoch has ended, and returns the checkpoint it saved. Tries
    /// again from that checkpoint while the stop lands on an epoch boundary.
    static func stopMidEpoch(dataset: CLIDataset, runDirectory: String, ranks: Int,
                             in folder: String) async throws -> Checkpoint {
        var checkpoint: Checkpoint?
        // The epoch's line comes before its report, and a signal sent before the report is
        // written lands before the next epoch's first step. So each try waits for the report,
        // then a little longer than the try before, but not so long that the run ends first.
        // A signal during the evaluation also stops at the epoch's end. On one rank the
        // evaluation takes most of an epoch, so by estimate only 4 tries in 10 land mid-epoch.
        // Twelve tries, at delays that shift against the epoch's period, make a miss rare.
        for attempt in 0..<12 {
            var arguments = ["train", "--data", dataset.root, "--epochs", String(epochs), "-b", String(batchSize)]
                + modelFlags
            arguments += attempt == 0 ? ["--run-dir", runDirectory] : ["--resume", runDirectory]
            if ranks > 1 {
                arguments += ["--nproc", String(ranks)]
            }
            let process = try CLIProcess(arguments, in: folder)
            let epochEnded = try await process.waitForStdout(containing: "/\(epochs) loss ")
            try #require(epochEnded, "no epoch finished; stderr: \(process.stderr)")
            try await waitForReport(in: runDirectory, newerThan: Date().addingTimeInterval(-0.05))
            try await Task.sleep(for: .milliseconds(min(100 << attempt, 800) + 37 * attempt))
            process.send(SIGINT)
            let stopped = try await process.finish()

            #expect(!stopped.timedOut)
            #expect(stopped.status == 130, "stderr: \(stopped.stderr)")
            #expect(stopped.stderrLines.contains { $0.hasPrefix("npid: stopped by SIGINT ") }, "stderr: \(stopped.stderr)")
            let saved = try Checkpoint.read(contentsOf: runDirectory + "/" + Checkpoint.fileName)
            checkpoint = saved
            if saved.stepInEpoch > 0 || stopped.status != 130 {
                break
            }
        }
        return try #require(checkpoint)
    }
}
