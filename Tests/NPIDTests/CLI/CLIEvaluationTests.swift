import Foundation
import Testing

/// `npid eval` and `npid neighbors` on the checkpoint of the shared tiny run.
@Suite struct CLIEvaluationTests {
    /// Checks the accuracy line and the per-class lines that `npid eval` prints.
    private func expectEvalReport(_ result: CLIResult, run: CLITrainedRun, features: String,
                                  sourceLocation: SourceLocation = #_sourceLocation) {
        result.expectSuccess(sourceLocation: sourceLocation)
        #expect(result.errorLines.isEmpty, sourceLocation: sourceLocation)
        let lines = result.stdoutLines
        #expect(lines.count == 1 + run.dataset.classNames.count, "stdout: \(result.stdout)", sourceLocation: sourceLocation)

        let summary = "(\(features), k=5, \(run.dataset.testCount) test images, \(run.dataset.trainCount) training images)"
        #expect(lines.first?.hasPrefix("kNN top-1 ") == true, sourceLocation: sourceLocation)
        #expect(lines.first?.hasSuffix(summary) == true, "stdout: \(result.stdout)", sourceLocation: sourceLocation)

        // One line per class, in class order: the name, then top-1 accuracy in percent.
        for (line, className) in zip(lines.dropFirst(), run.dataset.classNames) {
            let fields = line.split(separator: " ")
            #expect(fields.first.map(String.init) == className, "line: \(line)", sourceLocation: sourceLocation)
            let percent = fields.last.flatMap { Double($0.dropLast()) }
            #expect(fields.last?.hasSuffix("%") == true, "line: \(line)", sourceLocation: sourceLocation)
            #expect(percent.map { (0...100).contains($0) } == true, "line: \(line)", sourceLocation: sourceLocation)
        }
    }

    @Test func evalReportsBankAccuracy() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["eval", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                        "--threads", "1"],
                                       in: scratch.path)

        expectEvalReport(result, run: run, features: "memory bank")
        #expect(run.dataset.classNames.count == 3)
        #expect(result.stdoutLines.first?.contains("top-5 100.00%") == true, "stdout: \(result.stdout)")
        #expect(result.stderrLines.contains("note: with 3 classes, top-5 includes every class and is always 100%; compare by top-1"),
                "stderr: \(result.stderr)")
        #expect(run.result.stderrLines.contains("note: with 3 classes, top-5 includes every class and is always 100%; compare by top-1"),
                "training stderr: \(run.result.stderr)")
        // Both evaluate the final memory bank with k=5, so the figures agree with training's last line.
        let trainingLine = run.result.stdoutLines.first { $0.contains("(memory bank,") }
        #expect(trainingLine?.components(separatedBy: "  (").first == result.stdoutLines.first?.components(separatedBy: "  (").first)
    }

    @Test func evalRecomputesFeatures() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["eval", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                        "--recompute", "--threads", "1"],
                                       in: scratch.path)

        expectEvalReport(result, run: run, features: "recomputed features")
        let trainingLine = run.result.stdoutLines.first { $0.contains("(recomputed training features)") }
        #expect(trainingLine?.components(separatedBy: "  (").first == result.stdoutLines.first?.components(separatedBy: "  (").first)
    }

    @Test func evalRejectsOtherDataSize() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let dataRoot = scratch.path + "/data"
        try FileManager.default.copyItem(atPath: run.dataset.root, toPath: dataRoot)
        let className = run.dataset.classNames[0]
        let extra = try encodeJPEG(width: 32, height: 32, rgb: [UInt8](repeating: 90, count: 32 * 32 * 3))
        try scratch.write(extra, to: "data/train/\(className)/zzzz.jpg")

        let result = try await CLI.run(["eval", "--checkpoint", run.checkpointPath, "--data", dataRoot], in: scratch.path)

        result.expectRejected(status: 2, message: "checkpoint \(run.checkpointPath) has a memory bank of \(run.dataset.trainCount) rows but the training split has \(run.dataset.trainCount + 1) images; use the same --data and limits as the training run, or pass --recompute")
    }

    @Test func memoryBankOfOtherImagesIsRejected() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let run = try CLIRuns.copy(try await CLIRuns.twoEpochs.value, to: scratch.path + "/run")
        let dataRoot = scratch.path + "/data"
        try FileManager.default.copyItem(atPath: run.dataset.root, toPath: dataRoot)
        // Same classes and counts, but one training image replaced by a file of another name,
        // so bank row i would no longer be the feature of image i.
        let classFolder = dataRoot + "/train/" + run.dataset.classNames[0]
        let first = try #require(try FileManager.default.contentsOfDirectory(atPath: classFolder).sorted().first)
        try FileManager.default.moveItem(atPath: classFolder + "/" + first, toPath: classFolder + "/zzzz.jpg")
        let before = try CLIFiles.snapshot(run.runDirectory)

        let evaluated = try await CLI.run(["eval", "--checkpoint", run.checkpointPath, "--data", dataRoot], in: scratch.path)
        let resumed = try await CLI.run(["train", "--data", dataRoot, "--resume", run.runDirectory, "--epochs", "3"],
                                        in: scratch.path)
        let recomputed = try await CLI.run(["eval", "--checkpoint", run.checkpointPath, "--data", dataRoot, "--recompute"],
                                           in: scratch.path)
        // The launcher checks once before starting ranks, which would each print the error.
        let launched = try await CLI.run(["train", "--data", dataRoot, "--resume", run.runDirectory, "--epochs", "3",
                                          "--nproc", "2", "--threads", "1"], in: scratch.path)

        let problem = "checkpoint \(run.checkpointPath) contains memory bank rows of other images than \(dataRoot)/train: the classes and image counts match, but the file names or sizes differ"
        evaluated.expectRejected(status: 2, message: problem + "; pass the data folder the run trained on, or --recompute to compute the features of these images")
        #expect(resumed.status == 2, "stderr: \(resumed.stderr)")
        #expect(resumed.errorLines == ["npid: error: " + problem + "; resume with the data folder the run trained on, or start a new run on these images"])
        launched.expectRejected(status: 2, message: problem + "; resume with the data folder the run trained on, or start a new run on these images")
        #expect(try CLIFiles.snapshot(run.runDirectory) == before, "the run folder changed")
        recomputed.expectSuccess()
    }

    // MARK: neighbors

    @Test func neighborsDrawsQueryGrid() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let picture = scratch.path + "/neighbors.png"
        let queryCount = 3
        let neighborCount = 4

        let result = try await CLI.run(["neighbors", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                        "--out", picture, "--rows", String(queryCount),
                                        "--neighbors", String(neighborCount), "--threads", "1"],
                                       in: scratch.path)

        result.expectSuccess()
        #expect(result.errorLines.isEmpty)

        // One text line per query, naming its file, its class and each neighbour's class and similarity.
        let lines = result.stdoutLines
        #expect(lines.count == queryCount + 1, "stdout: \(result.stdout)")
        for (row, line) in lines.prefix(queryCount).enumerated() {
            // Queries cycle through the classes: the first test image of each class in turn.
            let className = run.dataset.classNames[row % run.dataset.classNames.count]
            #expect(line.hasPrefix("\(run.dataset.root)/test/\(className)/"), "line: \(line)")
            let parts = line.components(separatedBy: " [\(className)]: ")
            #expect(parts.count == 2, "line: \(line)")
            let neighbors = (parts.last ?? "").split(separator: " ")
            #expect(neighbors.count == 2 * neighborCount, "line: \(line)")
        }
        #expect(lines.last?.hasSuffix("; picture: \(picture)") == true)

        // The picture: PNG signature, then IHDR with the width and height as big-endian UInt32.
        let png = try CLIFiles.bytes(picture)
        try #require(png.count > 24)
        #expect(Array(png[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(String(decoding: png[12..<16], as: UTF8.self) == "IHDR")
        // npid neighbors draws an ImageGrid of 64-pixel tiles with 4 pixels of padding around
        // each and an 8-pixel gap after the query column, so r rows of c tiles (c > 1) make a
        // picture 4 + c·68 + 8 pixels wide and 4 + r·68 high.
        let tileSize = 64
        let padding = 4
        let queryGap = 8
        let columnCount = 1 + neighborCount
        let expectedWidth = padding + columnCount * (tileSize + padding) + queryGap
        let expectedHeight = padding + queryCount * (tileSize + padding)
        #expect(CLIFiles.unsignedBigEndian(png[16..<20]) == UInt32(expectedWidth))
        #expect(CLIFiles.unsignedBigEndian(png[20..<24]) == UInt32(expectedHeight))
    }

    /// Requests beyond the data set's size are capped, each with a note on stderr.
    @Test func neighborsNotesEachCap() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let testCount = run.dataset.testCount
        let trainCount = run.dataset.trainCount

        let random = try await CLI.run(["neighbors", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                        "--out", scratch.path + "/random.png", "--queries", "random:\(testCount + 5)",
                                        "--neighbors", String(trainCount + 1), "--threads", "1"],
                                       in: scratch.path)
        let rows = try await CLI.run(["neighbors", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                      "--out", scratch.path + "/rows.png", "--rows", String(testCount + 1),
                                      "--threads", "1"],
                                     in: scratch.path)

        random.expectSuccess()
        #expect(random.stderrLines == [
            "note: --queries random:\(testCount + 5) is more than the \(testCount) test images; all \(testCount) are queries",
            "note: --neighbors \(trainCount + 1) is more than the \(trainCount) training images; each query gets \(trainCount)",
        ])
        // One line per query with a class and a similarity per neighbour, then the summary.
        #expect(random.stdoutLines.count == testCount + 1, "stdout: \(random.stdout)")
        for line in random.stdoutLines.dropLast() {
            let neighbors = line.components(separatedBy: "]: ").last?.split(separator: " ") ?? []
            #expect(neighbors.count == 2 * trainCount, "line: \(line)")
        }
        rows.expectSuccess()
        #expect(rows.stderrLines == ["note: --rows \(testCount + 1) is more than the \(testCount) test images; the picture has \(testCount) rows"])
        #expect(rows.stdoutLines.count == testCount + 1, "stdout: \(rows.stdout)")
    }

    @Test func neighborsNotesDefaultRows() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let dataRoot = scratch.path + "/data"
        try FileManager.default.copyItem(atPath: run.dataset.root, toPath: dataRoot)
        // Two test images per class: fewer than the 10 rows drawn by default.
        for className in run.dataset.classNames {
            let folder = dataRoot + "/test/" + className
            for name in try FileManager.default.contentsOfDirectory(atPath: folder).sorted().dropFirst(2) {
                try FileManager.default.removeItem(atPath: folder + "/" + name)
            }
        }
        let testCount = 2 * run.dataset.classNames.count

        let result = try await CLI.run(["neighbors", "--checkpoint", run.checkpointPath, "--data", dataRoot,
                                        "--out", scratch.path + "/nn.png", "--threads", "1"], in: scratch.path)

        result.expectSuccess()
        #expect(result.stderrLines == ["note: the default --rows 10 is more than the \(testCount) test images; the picture has \(testCount) rows"])
    }

    @Test func neighborsChecksOutFolderFirst() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let picture = scratch.path + "/missing-folder/neighbors.png"

        let result = try await CLI.run(["neighbors", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                        "--out", picture, "--rows", "2", "--neighbors", "2"],
                                       in: scratch.path)

        // A bad --out is a usage error, found before any work and before any row is printed.
        #expect(!result.timedOut)
        #expect(result.status == 2, "stderr: \(result.stderr)")
        #expect(result.stdout == "")
        #expect(result.stderrLines.count == 1)
        #expect(result.errorLines.first?.contains("--out \(picture)") == true, "stderr: \(result.stderr)")
    }

    // MARK: embed

    @Test func embedOfOneImageSaysImage() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let imageFolder = try scratch.makeFolder("one")
        let classFolder = run.dataset.root + "/test/" + run.dataset.classNames[0]
        let firstImage = try #require(try FileManager.default.contentsOfDirectory(atPath: classFolder).sorted().first)
        try FileManager.default.copyItem(atPath: classFolder + "/" + firstImage, toPath: imageFolder + "/" + firstImage)
        let output = scratch.path + "/one.safetensors"

        let result = try await CLI.run(["embed", "--checkpoint", run.checkpointPath, "--images", imageFolder,
                                        "--out", output, "--threads", "1"],
                                       in: scratch.path)

        result.expectSuccess()
        #expect(result.stdoutLines.count == 1, "stdout: \(result.stdout)")
        #expect(result.stdoutLines.first?.hasPrefix("embedded 1 image (16-d embedding features) from \(imageFolder) in ") == true,
                "stdout: \(result.stdout)")
        #expect(result.stdoutLines.first?.hasSuffix(" s: \(output)") == true, "stdout: \(result.stdout)")
    }
}
