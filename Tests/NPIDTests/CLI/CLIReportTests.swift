import Foundation
import Testing
@testable import NPID

/// The report files that `npid train` keeps current, and `npid report`.
@Suite struct CLIReportTests {
    /// Returns the accuracy figures of a `kNN top-1 A%  top-5 B%  (...)` line, as printed.
    static func figures(_ line: String?) -> String? {
        line?.components(separatedBy: "  (").first
    }

    @Test func trainWritesEvaluationAndReport() async throws {
        let run = try await CLIRuns.twoEpochs.value
        run.result.expectSuccess()

        let evaluation = try RunEvaluation.read(contentsOf: run.runDirectory + "/evaluation.json")
        #expect(evaluation.epoch == 2)
        #expect(evaluation.features == "memory bank")
        #expect(evaluation.neighborCount == 5)
        #expect(evaluation.classNames == run.dataset.classNames)
        #expect(evaluation.queryCount == run.dataset.testCount)
        #expect(evaluation.confusionMatrix.map { $0.reduce(0, +) } == Array(repeating: CLIDataset.testPerClass, count: 3))
        // After the last epoch, training's final memory-bank line evaluates the same bank and network.
        let finalLine = run.result.stdoutLines.first { $0.contains("(memory bank,") }
        #expect(Self.figures(finalLine) == String(format: "kNN top-1 %.2f%%  top-5 %.2f%%", evaluation.top1, evaluation.top5))
        #expect(evaluation.retrievalQueryCount == run.dataset.testCount)

        let html = try String(contentsOfFile: run.runDirectory + "/report.html", encoding: .utf8)
        let elements = try XMLElementCounter.count(html)
        #expect(elements["svg"] == 3)
        #expect(html.contains("epoch 2 of 2"))
        let pictures = ["retrieval-successes.png", "retrieval-failures.png"]
            .filter { FileManager.default.fileExists(atPath: run.runDirectory + "/" + $0) }
        #expect(elements["img", default: 0] == pictures.count)
    }

    @Test func trainWritesTensorBoardScalars() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let folder = run.runDirectory + "/tensorboard"
        let files = try FileManager.default.contentsOfDirectory(atPath: folder)
        try #require(files.count == 1, "files: \(files)")
        #expect(files[0].hasPrefix("events.out.tfevents."))

        let records = try TensorBoardRecords.split(CLIFiles.bytes(folder + "/" + files[0]))
        let metrics = try MetricsLog(path: run.metricsPath).read()

        try #require(records.count == 1 + metrics.count)
        #expect(records[0].suffix(15) == [0x1A, 0x0D] + Array("brain.Event:2".utf8))
        Self.expectEpochEvents(Array(records.dropFirst()), match: metrics)
    }

    @Test func reportRebuildsFromSavedFiles() async throws {
        let shared = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let run = try CLIRuns.copy(shared, to: scratch.path + "/run")
        try FileManager.default.removeItem(atPath: run.runDirectory + "/report.html")

        let result = try await CLI.run(["report", run.runDirectory], in: scratch.path)

        result.expectSuccess()
        #expect(result.stdoutLines == ["report: \(run.runDirectory)/report.html"])
        let html = try String(contentsOfFile: run.runDirectory + "/report.html", encoding: .utf8)
        let evaluation = try RunEvaluation.read(contentsOf: run.runDirectory + "/evaluation.json")
        #expect(html.contains(String(format: "<tr><td>%.2f%%</td><td>%.2f%%</td><td>5</td>", evaluation.top1, evaluation.top5)))
    }

    @Test func reportWithDataEvaluatesAgain() async throws {
        let shared = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let run = try CLIRuns.copy(shared, to: scratch.path + "/run")

        let result = try await CLI.run(["report", run.runDirectory, "--data", run.dataset.root, "--recompute",
                                        "--threads", "1"], in: scratch.path)

        result.expectSuccess()
        let lines = result.stdoutLines
        #expect(lines.count == 2, "stdout: \(result.stdout)")
        #expect(lines.first?.hasSuffix("(recomputed features, k=5, \(run.dataset.testCount) test images)") == true)
        let trainingLine = run.result.stdoutLines.first { $0.contains("(recomputed training features)") }
        #expect(Self.figures(lines.first) == Self.figures(trainingLine))
        #expect(lines.last == "report: \(run.runDirectory)/report.html")
        let evaluation = try RunEvaluation.read(contentsOf: run.runDirectory + "/evaluation.json")
        #expect(evaluation.features == "recomputed features")
    }

    @Test func reportWithDataPrintsSigma() async throws {
        let shared = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let run = try CLIRuns.copy(shared, to: scratch.path + "/run")

        let result = try await CLI.run(["report", run.runDirectory, "--data", run.dataset.root, "--knn-t", "0.5",
                                        "--threads", "1"], in: scratch.path)

        result.expectSuccess()
        #expect(result.stdoutLines.first?.hasSuffix("(memory bank, k=5, σ=0.5, \(run.dataset.testCount) test images)") == true,
                "stdout: \(result.stdout)")
    }

    @Test func reportTakesSplitFolders() async throws {
        let shared = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let run = try CLIRuns.copy(shared, to: scratch.path + "/run")

        let fromRoot = try await CLI.run(["report", run.runDirectory, "--data", run.dataset.root, "--threads", "1"],
                                         in: scratch.path)
        let fromSplits = try await CLI.run(["report", run.runDirectory, "--train-dir", run.dataset.root + "/train",
                                            "--test-dir", run.dataset.root + "/test", "--threads", "1"], in: scratch.path)

        fromRoot.expectSuccess()
        fromSplits.expectSuccess()
        #expect(fromSplits.stdoutLines.count == 2, "stdout: \(fromSplits.stdout)")
        #expect(fromSplits.stdoutLines == fromRoot.stdoutLines)
    }

    @Test func reportRejectsBadInput() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let empty = try scratch.makeFolder("empty")

        let missing = try await CLI.run(["report", scratch.path + "/absent"], in: scratch.path)
        let notARun = try await CLI.run(["report", empty], in: scratch.path)
        let twoFolders = try await CLI.run(["report", empty, empty], in: scratch.path)
        let file = try scratch.write(Array("x".utf8), to: "file")
        let notAFolder = try await CLI.run(["report", file], in: scratch.path)

        missing.expectRejected(status: 2, message: "run folder \(scratch.path)/absent does not exist; pass the --run-dir of an npid train run")
        notARun.expectRejected(status: 2, message: "\(empty) contains none of config.json, metrics.jsonl, checkpoint.safetensors; pass the --run-dir of an npid train run")
        twoFolders.expectRejected(status: 2, message: "npid report takes one RUN_DIR, got 2; run npid report --help for an example")
        notAFolder.expectRejected(status: 2, message: "\(file) is a file, not a run folder; pass the --run-dir of an npid train run")
    }

    @Test func reportRejectsFolderAsConfiguration() async throws {
        let shared = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let run = try CLIRuns.copy(shared, to: scratch.path + "/run")
        try FileManager.default.removeItem(atPath: run.configurationPath)
        try scratch.makeFolder("run/config.json")

        let result = try await CLI.run(["report", run.runDirectory], in: scratch.path)

        result.expectRejected(status: 1, message: "\(run.configurationPath) is a folder, not a file; remove or rename it")
    }

    @Test func reportRejectsRepeatedEpoch() async throws {
        let shared = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let run = try CLIRuns.copy(shared, to: scratch.path + "/run")
        let lines = try String(contentsOfFile: run.metricsPath, encoding: .utf8).split(separator: "\n")
        try #require(lines.count == 2)
        try Data((lines + [lines[0]]).map { $0 + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: run.metricsPath))
        let before = try CLIFiles.bytes(run.runDirectory + "/report.html")

        let result = try await CLI.run(["report", run.runDirectory], in: scratch.path)

        result.expectRejected(status: 1, message: "metrics log \(run.metricsPath) line 3 repeats epoch 1 where epoch 3 was expected; correct that line, or delete it and the lines after it")
        #expect(try CLIFiles.bytes(run.runDirectory + "/report.html") == before)
    }

    @Test func reportWarnsAboutEmptiedMetrics() async throws {
        let shared = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let run = try CLIRuns.copy(shared, to: scratch.path + "/run")
        try Data().write(to: URL(fileURLWithPath: run.metricsPath))

        let result = try await CLI.run(["report", run.runDirectory], in: scratch.path)

        result.expectSuccess()
        let warning = "\(run.metricsPath) records no epochs, although \(run.runDirectory)/evaluation.json is from epoch 2, so the report has no learning curves or epoch table"
        #expect(result.stderrLines == ["warning: " + warning])
        let html = try String(contentsOfFile: run.runDirectory + "/report.html", encoding: .utf8)
        #expect(html.contains(#"<p class="warning">warning: \#(warning)</p>"#))
    }

    @Test func resumeFromOlderCheckpointRewritesTensorBoard() async throws {
        let shared = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let run = try CLIRuns.copy(shared, to: scratch.path + "/run")
        try FileManager.default.removeItem(atPath: run.checkpointPath)
        try FileManager.default.linkItem(atPath: run.runDirectory + "/checkpoint-epoch1.safetensors", toPath: run.checkpointPath)

        let result = try await CLI.run(["train", "--data", run.dataset.root, "--resume", run.runDirectory,
                                        "--workers", "0", "--threads", "1"], in: scratch.path)

        result.expectSuccess()
        let folder = run.runDirectory + "/tensorboard"
        let files = try FileManager.default.contentsOfDirectory(atPath: folder)
        try #require(files.count == 1, "files: \(files)")
        let records = try TensorBoardRecords.split(CLIFiles.bytes(folder + "/" + files[0]))
        let metrics = try MetricsLog(path: run.metricsPath).read()
        #expect(metrics.map(\.epoch) == [1, 2])
        // The file-version event, then one event per epoch: step 2 once, not twice.
        try #require(records.count == 1 + metrics.count)
        Self.expectEpochEvents(Array(records.dropFirst()), match: metrics)
    }

    @Test func reportNamesMissingEvaluationKey() async throws {
        let shared = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let run = try CLIRuns.copy(shared, to: scratch.path + "/run")
        try Data("{}".utf8).write(to: URL(fileURLWithPath: run.runDirectory + "/evaluation.json"))

        let result = try await CLI.run(["report", run.runDirectory], in: scratch.path)

        result.expectRejected(status: 1, message: "\(run.runDirectory)/evaluation.json is not an evaluation written by npid (missing key \"epoch\"); delete it, or run npid report \(run.runDirectory) --data ROOT to evaluate the checkpoint again")
    }

    @Test func reportRejectsFolderAsReportFile() async throws {
        let shared = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let run = try CLIRuns.copy(shared, to: scratch.path + "/run")
        try FileManager.default.removeItem(atPath: run.runDirectory + "/report.html")
        try scratch.makeFolder("run/report.html")

        let result = try await CLI.run(["report", run.runDirectory], in: scratch.path)

        result.expectRejected(status: 1, message: "\(run.runDirectory)/report.html is a folder; remove or rename it")
        #expect(try FileManager.default.contentsOfDirectory(atPath: run.runDirectory + "/report.html") == [])
    }

    @Test func reportFlagsNeedData() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["report", run.runDirectory, "--recompute"], in: scratch.path)

        result.expectRejected(status: 2, message: "--recompute needs a data option (--data ROOT, or --train-dir and --test-dir), because only a new evaluation uses it")
    }

    @Test func splitFoldersWithoutCheckpoint() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let run = try CLIRuns.copy(try await CLIRuns.twoEpochs.value, to: scratch.path + "/run")
        try FileManager.default.removeItem(atPath: run.checkpointPath)

        let result = try await CLI.run(["report", run.runDirectory, "--train-dir", run.dataset.root + "/train",
                                        "--test-dir", run.dataset.root + "/test"], in: scratch.path)

        result.expectRejected(status: 2, message: "a new evaluation (--train-dir and --test-dir) needs \(run.checkpointPath), which does not exist; drop --train-dir and --test-dir to rebuild the report from the saved files")
    }

    /// Checks that each event record encodes exactly its epoch's scalars, whatever its wall time.
    static func expectEpochEvents(_ records: [[UInt8]], match metrics: [EpochMetrics],
                                  sourceLocation: SourceLocation = #_sourceLocation) {
        for (record, epoch) in zip(records, metrics) {
            // Bytes 1...8 are the wall time; the rest must encode exactly this epoch's scalars.
            let wallTime = Double(bitPattern: record[1..<9].reversed().reduce(UInt64(0)) { ($0 << 8) | UInt64($1) })
            let scalars: [(tag: String, value: Float)] = [
                ("loss", Float(epoch.loss)), ("lr", Float(epoch.lr)), ("knn_top1", Float(epoch.knnTop1 ?? -1)),
                ("knn_top5", Float(epoch.knnTop5 ?? -1)), ("images_per_s", Float(epoch.imagesPerSecond)),
            ]
            #expect(record == TensorBoardEvent.scalarEvent(wallTime: wallTime, step: Int64(epoch.epoch), scalars: scalars),
                    sourceLocation: sourceLocation)
        }
    }
}
