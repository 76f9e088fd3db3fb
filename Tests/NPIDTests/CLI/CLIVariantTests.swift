import Foundation
import Testing
@testable import NPID

/// `npid train` with each objective variant: the flags reach config.json and the checkpoint,
/// and a resume cannot switch the objective.
@Suite struct CLIVariantTests {
    /// Flags of one variant and what the run must record.
    struct Variant: Sendable, CustomTestStringConvertible {
        let flags: [String]
        let loss: LossFunction
        let normalizationMode: NormalizationMode
        let negativeCount: Int
        let proximalWeight: Double
        /// Whether the checkpoint must contain NCE's Z.
        let savesZ: Bool

        var testDescription: String { flags.joined(separator: " ") }
    }

    static let variants = [
        Variant(flags: ["--loss", "softmax-ce"], loss: .softmaxCrossEntropy, normalizationMode: .fixed,
                negativeCount: 16, proximalWeight: 0, savesZ: false),
        Variant(flags: ["--nce-z", "momentum", "--nce-z-rate", "0.2"], loss: .nce, normalizationMode: .momentum,
                negativeCount: 16, proximalWeight: 0, savesZ: true),
        Variant(flags: ["--proximal", "0.5"], loss: .nce, normalizationMode: .fixed,
                negativeCount: 16, proximalWeight: 0.5, savesZ: true),
        Variant(flags: ["--nce-k", "0"], loss: .nce, normalizationMode: .fixed,
                negativeCount: 0, proximalWeight: 0, savesZ: false),
    ]

    @Test(arguments: variants)
    func trainRecordsVariant(_ variant: Variant) async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"

        let result = try await CLI.run(["train", "--data", dataset.root, "--run-dir", runDirectory, "--epochs", "1"]
                                           + CLIRuns.smallModelFlags + variant.flags,
                                       in: scratch.path)

        result.expectSuccess()
        let configuration = try JSONDecoder().decode(TrainingConfiguration.self,
                                                     from: Data(contentsOf: URL(fileURLWithPath: runDirectory + "/config.json")))
        #expect(configuration.loss == variant.loss)
        #expect(configuration.normalizationMode == variant.normalizationMode)
        #expect(configuration.negativeCount == variant.negativeCount)
        #expect(configuration.proximalWeight == variant.proximalWeight)
        let loss = try #require(try CLIFiles.jsonLines(runDirectory + "/metrics.jsonl").first?["loss"] as? Double)
        #expect(loss.isFinite)
        let checkpoint = try Checkpoint.read(contentsOf: runDirectory + "/checkpoint.safetensors")
        #expect(checkpoint.configuration == configuration)
        #expect((checkpoint.normalizationConstant != nil) == variant.savesZ)
        if variant.normalizationMode == .momentum {
            #expect(result.stderr.contains("; it follows a moving average with rate 0.2 from here on"), "stderr: \(result.stderr)")
        }
    }

    @Test func resumeRejectsDifferentLoss() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let run = try CLIRuns.copy(try await CLIRuns.twoEpochs.value, to: scratch.path + "/run")
        let before = try CLIFiles.snapshot(run.runDirectory)

        let result = try await CLI.run(["train", "--data", run.dataset.root, "--resume", run.runDirectory,
                                        "--epochs", "3", "--loss", "softmax-ce"],
                                       in: scratch.path)

        result.expectRejected(status: 2, message: "--loss softmax-ce contradicts the checkpoint in \(run.runDirectory), which was trained with nce; drop --loss to resume, or start a new --run-dir")
        #expect(try CLIFiles.snapshot(run.runDirectory) == before, "the run folder changed")
    }
}
