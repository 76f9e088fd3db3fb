import Foundation
import Testing
@testable import NPID
import Torch

/// `npid bench --train` (loader and synthetic batches) and `npid bench --eval` on tiny runs.
@Suite struct CLIBenchTests {
    static func jsonObject(_ result: CLIResult) throws -> [String: Any] {
        try #require(result.stdoutLines.count == 1, "stdout: \(result.stdout)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }

    @Test func trainSyntheticPrintsFigures() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["bench", "--train", "--synthetic", "--bank", "300", "--steps", "2",
                                        "--width", "8", "--low-dim", "16", "-b", "8", "--nce-k", "16",
                                        "--threads", "1"], in: scratch.path)

        result.expectSuccess()
        let object = try Self.jsonObject(result)
        #expect(object["mode"] as? String == "train")
        #expect(object["input"] as? String == "synthetic")
        #expect(object["train_images"] as? Int == 300)
        #expect(object["batch_size"] as? Int == 8)
        #expect(object["nce_k"] as? Int == 16)
        #expect(object["steps"] as? Int == 2)
        #expect(object["width"] as? Int == 8)
        // The default: bfloat16 where the CPU has bfloat16 units, else float32.
        #expect(object["precision"] as? String == (Torch.cpuHasBFloat16Units ? "bf16" : "fp32"))
        #expect(object["threads"] as? Int == 1)
        let rate = try #require(object["images_per_s"] as? Double)
        let stepMilliseconds = try #require(object["step_ms"] as? Double)
        // step_ms is the time of one batch of 8 images at the measured rate. Both are printed rounded
        // (to 0.1 ms and 0.01 images/s), and a rate error of 0.005 moves 8000 / rate by 8000 · 0.005 / rate².
        let tolerance = 0.05 + 8000 * 0.005 / (rate * rate) + 1e-9
        #expect(abs(stepMilliseconds - 8000 / rate) <= tolerance, "stdout: \(result.stdout)")
        #expect((object["peak_rss_mb"] as? Double).map { $0 > 0 } == true)
        #expect(object["gpu_peak_allocated_mb"] == nil)
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/runs"))
    }

    @Test func trainWithLoaderUsesData() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["bench", "--train", "--data", dataset.root, "--steps", "1", "--width", "8",
                                        "--low-dim", "16", "-b", "8", "--nce-k", "16", "--threads", "1",
                                        "--workers", "0"], in: scratch.path)

        result.expectSuccess()
        let object = try Self.jsonObject(result)
        #expect(object["input"] as? String == "loader")
        #expect(object["train_images"] as? Int == dataset.trainCount)
        #expect(object["workers"] as? Int == 0)
        #expect((object["images_per_s"] as? Double).map { $0 > 0 } == true)
    }

    @Test func trainStepTimeCountsShortBatches() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let batchSize = dataset.trainCount + 16

        let result = try await CLI.run(["bench", "--train", "--data", dataset.root, "--steps", "2", "--width", "16",
                                        "--low-dim", "16", "-b", String(batchSize), "--nce-k", "16", "--threads", "1",
                                        "--workers", "0"], in: scratch.path)

        result.expectSuccess()
        let object = try Self.jsonObject(result)
        #expect(object["batch_size"] as? Int == batchSize)
        // The batch is larger than the training split, so every step takes the whole split once.
        #expect(object["images"] as? Int == 2 * dataset.trainCount, "stdout: \(result.stdout)")
        let rate = try #require(object["images_per_s"] as? Double)
        let stepMilliseconds = try #require(object["step_ms"] as? Double)
        let expected = 1000 * Double(dataset.trainCount) / rate
        // Rounding as in trainSyntheticPrintsFigures, for a step of trainCount images.
        let tolerance = 0.05 + expected * 0.005 / rate + 1e-9
        #expect(abs(stepMilliseconds - expected) <= tolerance, "stdout: \(result.stdout)")
    }

    @Test func syntheticBankSmallerThanBatch() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["bench", "--train", "--synthetic", "--bank", "4", "-b", "8"], in: scratch.path)

        result.expectRejected(status: 2, message: "--bank 4 is smaller than the batch of 8 images; raise --bank to at least 8 or lower -b")
    }

    @Test func evalTimesBothParts() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["bench", "--eval", "--data", dataset.root, "--width", "8", "--low-dim", "16",
                                        "--knn-k", "5", "--knn-t", "0.1", "--threads", "1", "--workers", "0"], in: scratch.path)
        let zero = try await CLI.run(["bench", "--eval", "--data", dataset.root, "--knn-t", "0"], in: scratch.path)

        result.expectSuccess()
        let object = try Self.jsonObject(result)
        #expect(object["mode"] as? String == "eval")
        #expect(object["queries"] as? Int == dataset.testCount)
        #expect(object["train_images"] as? Int == dataset.trainCount)
        #expect(object["knn_k"] as? Int == 5)
        zero.expectRejected(status: 2, message: "--knn-t must be a positive temperature, got 0.0")
        let total = try #require(object["seconds"] as? Double)
        let features = try #require(object["feature_seconds"] as? Double)
        let vote = try #require(object["knn_seconds"] as? Double)
        // Each figure is rounded to a millisecond on its own.
        #expect(abs(total - features - vote) <= 0.0015 + 1e-9, "stdout: \(result.stdout)")
        let top1 = try #require(object["top1"] as? Double)
        #expect(top1 >= 0)
        #expect(top1 <= 100)
    }

    @Test func trainRejectsContradictoryInput() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let both = try await CLI.run(["bench", "--train", "--synthetic", "--data", dataset.root], in: scratch.path)
        let bank = try await CLI.run(["bench", "--train", "--data", dataset.root, "--bank", "10"], in: scratch.path)
        let steps = try await CLI.run(["bench", "--train", "--synthetic", "--steps", "0"], in: scratch.path)
        let noData = try await CLI.run(["bench", "--train"], in: scratch.path)
        // 10^12 rows of 128 floats are 512 TB, beyond any machine's memory.
        let hugeBank = try await CLI.run(["bench", "--train", "--synthetic", "--bank", "1000000000000"], in: scratch.path)

        both.expectRejected(status: 2, message: "--synthetic replaces --data with random pixels; drop one of them")
        bank.expectRejected(status: 2, message: "--bank sets the memory-bank rows of --synthetic; add --synthetic or drop --bank")
        steps.expectRejected(status: 2, message: "--steps must be at least 1, got 0")
        #expect(noData.status == 2, "stderr: \(noData.stderr)")
        #expect(noData.stderr.contains("--data"), "stderr: \(noData.stderr)")
        #expect(hugeBank.status == 2, "stderr: \(hugeBank.stderr)")
        #expect(hugeBank.stderr.contains("--bank 1000000000000 needs 512000.0 GB for the memory bank alone"),
                "stderr: \(hugeBank.stderr)")
    }

    @Test func imageSizeBeyondMemoryRejected() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        // One image of 10^7 × 10^7 float32 pixels is 1.2 PB, beyond any machine's memory.
        let loader = try await CLI.run(["bench", "--loader", "--data", dataset.root, "--image-size", "10000000",
                                        "-b", "1", "--batches", "1"], in: scratch.path)
        let train = try await CLI.run(["bench", "--train", "--synthetic", "--image-size", "10000000", "-b", "1",
                                       "--bank", "10", "--steps", "1", "--width", "8"], in: scratch.path)

        let prefix = "--image-size 10000000 with batches of 1 image needs 1200000.0 GB for the pixels of one batch, more than this machine's "
        let suffix = " of memory; choose a smaller --image-size or -b"
        loader.expectRejectedForMemory(prefix: prefix, suffix: suffix)
        train.expectRejectedForMemory(prefix: prefix, suffix: suffix)
    }

    @Test func knnClassesBeyondMemoryRejected() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        // A confusion matrix of 10^9 × 10^9 Int counts is 8 EB.
        let result = try await CLI.run(["bench", "--knn", "--bank", "100", "--queries", "10", "--dim", "8",
                                        "--classes", "1000000000"], in: scratch.path)

        result.expectRejectedForMemory(prefix: "--classes 1000000000 needs 8000000000.0 GB for the confusion matrix alone, more than this machine's ",
                                       suffix: " of memory; choose a smaller --classes")
    }

    /// libtorch's allocator failure becomes one sentence with the size, naming only the options
    /// that bench --knn accepts. The 512 TB bank is beyond a 47-bit address space, so the
    /// allocation fails even where memory is overcommitted.
    @Test func bankBeyondAddressSpaceFailsWithSentence() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["bench", "--knn", "--bank", "1000000000000", "--queries", "10", "--dim", "128",
                                        "--classes", "10"], in: scratch.path)

        #expect(result.status == 1, "stderr: \(result.stderr)")
        #expect(result.stderr == "npid: error: out of memory: libtorch could not allocate a tensor of 512000.0 GB; lower the options that size the batch, the network or the memory bank (--bank), or free memory\n")
    }
}
