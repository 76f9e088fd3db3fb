import Foundation
import Testing
@testable import NPID

/// Bad data folders, bad checkpoints and occupied run folders given to `npid`: each must fail
/// with one `npid: error:` line naming the path, and write no run folder or checkpoint.
@Suite struct CLIInputErrorTests {
    /// Runs a one-epoch `npid train` on `dataRoot` into `runDirectory`.
    private func train(data dataRoot: String, runDirectory: String, in folder: String,
                       extraFlags: [String] = []) async throws -> CLIResult {
        try await CLI.run(["train", "--data", dataRoot, "--run-dir", runDirectory, "--epochs", "1"]
                              + CLIRuns.smallModelFlags + extraFlags,
                          in: folder)
    }

    // MARK: Data folders

    @Test func missingDataFolderIsRejected() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let dataRoot = scratch.path + "/no-such-folder"
        let runDirectory = scratch.path + "/run"

        let result = try await train(data: dataRoot, runDirectory: runDirectory, in: scratch.path)

        result.expectRejected(status: 2, message: "data folder \(dataRoot) does not exist; pass --data ROOT where ROOT contains train/ and test/ folders of class sub-folders")
        #expect(!FileManager.default.fileExists(atPath: runDirectory))
    }

    @Test func emptyDataFolderIsRejected() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let dataRoot = try scratch.makeFolder("data")
        let runDirectory = scratch.path + "/run"

        let result = try await train(data: dataRoot, runDirectory: runDirectory, in: scratch.path)

        result.expectRejected(status: 2, message: "data folder \(dataRoot)/train does not exist or is not a folder; pass --data ROOT where ROOT contains train/ and test/ folders with one sub-folder per class")
        #expect(!FileManager.default.fileExists(atPath: runDirectory))
    }

    @Test func singleClassIsRejected() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let dataRoot = try scratch.makeFolder("data")
        let className = dataset.classNames[0]
        for split in ["train", "test"] {
            try FileManager.default.copyItem(atPath: dataset.root + "/" + split + "/" + className,
                                             toPath: try scratch.makeFolder("data/" + split) + "/" + className)
        }
        let runDirectory = scratch.path + "/run"

        let result = try await train(data: dataRoot, runDirectory: runDirectory, in: scratch.path)

        result.expectRejected(status: 2, message: "data folder \(dataRoot)/train contains a single class folder, \(className); the kNN evaluation needs at least two classes, so add another class folder to both train/ and test/")
        #expect(!FileManager.default.fileExists(atPath: runDirectory))
    }

    /// Splits with different classes are named once, also when --nproc starts three ranks
    /// that would each report them, and check-data gives the same line.
    @Test func differentSplitClassesAreNamedOnce() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let dataRoot = scratch.path + "/data"
        try FileManager.default.copyItem(atPath: dataset.root, toPath: dataRoot)
        let renamed = dataset.classNames[1]
        try FileManager.default.moveItem(atPath: dataRoot + "/test/" + renamed, toPath: dataRoot + "/test/zebra")
        let runDirectory = scratch.path + "/run"
        let message = "\(dataRoot)/train has class folder \(renamed) that \(dataRoot)/test lacks, and \(dataRoot)/test has class folder zebra that \(dataRoot)/train lacks; both splits need the same classes"

        let alone = try await train(data: dataRoot, runDirectory: runDirectory, in: scratch.path)
        let ranks = try await train(data: dataRoot, runDirectory: runDirectory, in: scratch.path, extraFlags: ["--nproc", "3"])
        let checked = try await CLI.run(["check-data", dataRoot], in: scratch.path)

        alone.expectRejected(status: 2, message: message)
        ranks.expectRejected(status: 2, message: message)
        #expect(checked.status == 2, "stderr: \(checked.stderr)")
        #expect(checked.stderr == CLI.errorPrefix + message + "\n")
        #expect(!FileManager.default.fileExists(atPath: runDirectory))
    }

    @Test func missingTrainSplitIsRejected() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let dataRoot = try scratch.makeFolder("data")
        try scratch.makeFolder("data/test/cat")
        let runDirectory = scratch.path + "/run"

        let result = try await train(data: dataRoot, runDirectory: runDirectory, in: scratch.path)

        result.expectRejected(status: 2, message: "data folder \(dataRoot)/train does not exist or is not a folder; pass --data ROOT where ROOT contains train/ and test/ folders with one sub-folder per class")
        #expect(!FileManager.default.fileExists(atPath: runDirectory))
    }

    @Test func trainSplitWithoutClassesRejected() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let dataRoot = try scratch.makeFolder("data")
        try scratch.makeFolder("data/train")
        try scratch.makeFolder("data/test/cat")
        // A loose image is not a class folder.
        try scratch.write(try encodeJPEG(width: 8, height: 8, rgb: [UInt8](repeating: 128, count: 8 * 8 * 3)),
                          to: "data/train/0000.jpg")
        let runDirectory = scratch.path + "/run"

        let result = try await train(data: dataRoot, runDirectory: runDirectory, in: scratch.path)

        result.expectRejected(status: 2, message: "data folder \(dataRoot)/train contains no class sub-folders; put the images of each class in their own sub-folder, such as \(dataRoot)/train/cat/0001.jpg")
        #expect(!FileManager.default.fileExists(atPath: runDirectory))
    }

    @Test func classFoldersWithoutImagesRejected() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let dataRoot = try scratch.makeFolder("data")
        try scratch.write(Array("not an image".utf8), to: "data/train/cat/notes.txt")
        try scratch.makeFolder("data/train/dog")
        try scratch.makeFolder("data/test/cat")
        try scratch.makeFolder("data/test/dog")
        let runDirectory = scratch.path + "/run"

        let result = try await train(data: dataRoot, runDirectory: runDirectory, in: scratch.path)

        result.expectRejected(status: 2, message: "data folder \(dataRoot)/train contains no .jpg, .jpeg or .png files in its class sub-folders; check that this is the folder you meant")
        #expect(!FileManager.default.fileExists(atPath: runDirectory))
    }

    @Test func oneEmptyClassFolderIsNamed() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let dataRoot = scratch.path + "/data"
        try FileManager.default.copyItem(atPath: dataset.root, toPath: dataRoot)
        try scratch.makeFolder("data/train/zebra")
        try scratch.makeFolder("data/test/zebra")
        let runDirectory = scratch.path + "/run"

        let result = try await train(data: dataRoot, runDirectory: runDirectory, in: scratch.path)

        // One folder takes the singular verb.
        result.expectRejected(status: 2, message: "class folder zebra in \(dataRoot)/train contains no .jpg, .jpeg or .png files; add images to it or remove it")
        #expect(!FileManager.default.fileExists(atPath: runDirectory))
    }

    @Test func truncatedJPEGIsNamed() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let dataRoot = scratch.path + "/data"
        try FileManager.default.copyItem(atPath: dataset.root, toPath: dataRoot)
        let classFolder = dataRoot + "/train/" + dataset.classNames[1]
        let truncatedFile = classFolder + "/" + (try FileManager.default.contentsOfDirectory(atPath: classFolder).sorted()[2])
        let original = try CLIFiles.bytes(truncatedFile)
        try Data(original.prefix(original.count / 2)).write(to: URL(fileURLWithPath: truncatedFile))
        let runDirectory = scratch.path + "/run"

        let result = try await train(data: dataRoot, runDirectory: runDirectory, in: scratch.path)

        #expect(!result.timedOut)
        #expect(result.status == 1, "stderr: \(result.stderr)")
        #expect(result.stdout == "")
        #expect(result.errorLines.count == 1)
        #expect(result.stderrLines.count == 1)
        #expect(result.stderr.hasPrefix("npid: error: cannot decode image \(truncatedFile) ("), "stderr: \(result.stderr)")
        #expect(result.stderr.hasSuffix("); replace or delete the file, or pass --on-bad-image skip to leave it out\n"),
                "stderr: \(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: runDirectory))
    }

    @Test func nonImageWithJPEGNameIsNamed() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let dataRoot = scratch.path + "/data"
        try FileManager.default.copyItem(atPath: dataset.root, toPath: dataRoot)
        let impostor = try scratch.write(Array("GIF89a, not really a JPEG".utf8),
                                         to: "data/test/\(dataset.classNames[0])/zzzz.jpg")
        let runDirectory = scratch.path + "/run"

        let result = try await train(data: dataRoot, runDirectory: runDirectory, in: scratch.path)

        result.expectRejected(status: 1, message: "file \(impostor) is not a JPEG or PNG image (unrecognised leading bytes); convert it to JPEG or PNG or delete it, or pass --on-bad-image skip to leave it out")
        #expect(!FileManager.default.fileExists(atPath: runDirectory))
    }

    // MARK: Checkpoints

    @Test func imageSizeBeyondMemoryRejected() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"

        // Two images of 10^7 × 10^7 float32 pixels are 2.4 PB, beyond any machine's memory.
        let result = try await train(data: dataset.root, runDirectory: runDirectory, in: scratch.path,
                                     extraFlags: ["--image-size", "10000000", "-b", "2"])

        result.expectRejectedForMemory(prefix: "--image-size 10000000 with batches of 2 images needs 2400000.0 GB for the pixels of one batch, more than this machine's ",
                                       suffix: " of memory; choose a smaller --image-size or -b")
        #expect(!FileManager.default.fileExists(atPath: runDirectory))
    }

    @Test func evalRejectsMissingCheckpoint() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let checkpoint = scratch.path + "/missing.safetensors"

        let result = try await CLI.run(["eval", "--checkpoint", checkpoint, "--data", dataset.root], in: scratch.path)

        result.expectRejected(status: 2, message: "--checkpoint \(checkpoint) does not exist")
    }

    @Test func evalRejectsFolderAsCheckpoint() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let folder = try scratch.makeFolder("run")

        let result = try await CLI.run(["eval", "--checkpoint", folder, "--data", dataset.root], in: scratch.path)

        result.expectRejected(status: 2, message: "--checkpoint \(folder) is a folder; pass the checkpoint.safetensors file inside it")
    }

    /// A folder given as --index gets advice about embeddings files, not checkpoints.
    @Test func searchRejectsFolderAsIndex() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let checkpoint = try scratch.write(Array("checked later".utf8), to: "checkpoint.safetensors")
        let folder = try scratch.makeFolder("embeddings")

        let result = try await CLI.run(["search", "--checkpoint", checkpoint, "--index", folder, "query.jpg"],
                                       in: scratch.path)

        result.expectRejected(status: 2, message: "--index \(folder) is a folder; pass the .safetensors file that npid embed wrote")
    }

    @Test func evalOfRandomBytesFails() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        var generator = CLIRandom(seed: 7)
        let noise = (0..<4096).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let checkpoint = try scratch.write(noise, to: "noise.safetensors")

        let result = try await CLI.run(["eval", "--checkpoint", checkpoint, "--data", dataset.root], in: scratch.path)

        #expect(!result.timedOut)
        #expect(result.status == 1, "stderr: \(result.stderr)")
        #expect(result.stdout == "")
        #expect(result.stderrLines.count == 1)
        #expect(result.errorLines.count == 1)
        #expect(result.stderr.hasPrefix("npid: error: safetensors file \(checkpoint) is not a safetensors file or is corrupt"),
                "stderr: \(result.stderr)")
    }

    @Test func evalOfForeignSafetensorsFails() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        // A valid safetensors file with one tensor and another program's metadata.
        let header = Array(#"{"__metadata__":{"format":"pt"},"weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#.utf8)
        let length = UInt64(header.count)
        let lengthBytes = (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * $0)) }
        let checkpoint = try scratch.write(lengthBytes + header + [UInt8](repeating: 0, count: 8), to: "model.safetensors")

        let result = try await CLI.run(["eval", "--checkpoint", checkpoint, "--data", dataset.root], in: scratch.path)

        result.expectRejected(status: 1, message: "checkpoint \(checkpoint) is not a swift-npid checkpoint (metadata format is pt, expected swift-npid-checkpoint-1)")
    }

    @Test func evalOfCheckpointWithOtherArchitectureFails() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        // The tensors of a ResNet-18 under a configuration that claims ResNet-34, with a valid checksum.
        var contents = try Safetensors.read(contentsOf: run.checkpointPath)
        contents = try CheckpointSamples.editedConfiguration(contents) { configuration in
            var model = configuration["model"] as? [String: Any] ?? [:]
            model["architecture"] = "resnet34"
            configuration["model"] = model
        }
        let checkpoint = try scratch.write(try CheckpointSamples.resigned(contents), to: "checkpoint.safetensors")

        let result = try await CLI.run(["eval", "--checkpoint", checkpoint, "--data", run.dataset.root], in: scratch.path)

        result.expectRejected(status: 1, message: "checkpoint \(checkpoint) has no tensor model.layer4.2.conv2.weight, which a resnet34 network needs")
    }

    /// A flag given with --resume that contradicts the checkpoint, and the value it was trained with.
    struct ContradictingFlag: Sendable, CustomTestStringConvertible {
        let flags: [String]
        let saved: String

        var testDescription: String { flags.joined(separator: " ") }
    }

    @Test(arguments: [ContradictingFlag(flags: ["--arch", "resnet34"], saved: "resnet18"),
                      ContradictingFlag(flags: ["--low-dim", "32"], saved: "16"),
                      ContradictingFlag(flags: ["--nce-k", "0"], saved: "16")])
    func resumeRejectsContradictingFlag(_ contradiction: ContradictingFlag) async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let run = try CLIRuns.copy(try await CLIRuns.twoEpochs.value, to: scratch.path + "/run")
        let before = try CLIFiles.snapshot(run.runDirectory)

        let result = try await CLI.run(["train", "--data", run.dataset.root, "--resume", run.runDirectory, "--epochs", "3"]
                                           + contradiction.flags,
                                       in: scratch.path)

        let flag = contradiction.flags[0]
        result.expectRejected(status: 2, message: "\(flag) \(contradiction.flags[1]) contradicts the checkpoint in \(run.runDirectory), which was trained with \(contradiction.saved); drop \(flag) to resume, or start a new --run-dir")
        #expect(try CLIFiles.snapshot(run.runDirectory) == before, "the run folder changed")
    }

    @Test func resumeWithOtherDataSizeIsRejected() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let run = try CLIRuns.copy(try await CLIRuns.twoEpochs.value, to: scratch.path + "/run")
        let before = try CLIFiles.snapshot(run.runDirectory)
        let dataRoot = scratch.path + "/data"
        try FileManager.default.copyItem(atPath: run.dataset.root, toPath: dataRoot)
        let classFolder = dataRoot + "/train/" + run.dataset.classNames[0]
        let firstImage = try FileManager.default.contentsOfDirectory(atPath: classFolder).sorted()[0]
        try FileManager.default.copyItem(atPath: classFolder + "/" + firstImage, toPath: classFolder + "/zzzz.jpg")

        let result = try await CLI.run(["train", "--data", dataRoot, "--resume", run.runDirectory, "--epochs", "3"],
                                       in: scratch.path)

        // The images are counted only once decoded, so progress lines come before the error.
        #expect(!result.timedOut)
        #expect(result.status == 2, "stderr: \(result.stderr)")
        #expect(result.stdout == "")
        #expect(result.errorLines == ["npid: error: checkpoint \(run.runDirectory)/checkpoint.safetensors has a memory bank of \(run.dataset.trainCount) rows, but the data has \(run.dataset.trainCount + 1) training images; resume with the same --data and --limit-per-class, and with --on-bad-image skip if the run left out images that did not decode"])
        #expect(try CLIFiles.snapshot(run.runDirectory) == before, "the run folder changed")
    }

    @Test func namedPipeCheckpointIsRejected() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let dataset = try CLIDataset.shared.get()
        let pipe = scratch.path + "/checkpoint.safetensors"
        #expect(mkfifo(pipe, 0o600) == 0)

        // Opening a named pipe for reading blocks until a writer opens it, unless O_NONBLOCK is set.
        let result = try await CLI.run(["eval", "--checkpoint", pipe, "--data", dataset.root, "--threads", "1"],
                                       in: scratch.path, timeLimit: 30)

        result.expectRejected(status: 1, message: "\(pipe) is a named pipe, not a safetensors file; pass the file itself")
    }

    @Test func resumeWithOtherClassesIsRejected() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let run = try CLIRuns.copy(try await CLIRuns.twoEpochs.value, to: scratch.path + "/run")
        let before = try CLIFiles.snapshot(run.runDirectory)
        let dataRoot = scratch.path + "/data"
        try FileManager.default.copyItem(atPath: run.dataset.root, toPath: dataRoot)
        // Same image counts, but the last class folder renamed in both splits.
        let names = run.dataset.classNames
        for split in ["train", "test"] {
            try FileManager.default.moveItem(atPath: "\(dataRoot)/\(split)/\(names[names.count - 1])",
                                             toPath: "\(dataRoot)/\(split)/zebra")
        }
        let renamed = Array(names.dropLast()) + ["zebra"]

        let result = try await CLI.run(["train", "--data", dataRoot, "--resume", run.runDirectory, "--epochs", "3"],
                                       in: scratch.path)

        #expect(!result.timedOut)
        #expect(result.status == 2, "stderr: \(result.stderr)")
        #expect(result.stdout == "")
        #expect(result.errorLines == ["npid: error: checkpoint \(run.runDirectory)/checkpoint.safetensors was trained on classes \(names.joined(separator: ", ")) (\(names.count) in all), but the data has \(renamed.joined(separator: ", ")) (\(names.count)); only the checkpoint has \(names[names.count - 1]) and only the data has zebra; pass the data folder the run trained on"])
        #expect(try CLIFiles.snapshot(run.runDirectory) == before, "the run folder changed")

        // Into another --run-dir, the check comes before the copy and names the original.
        let fork = scratch.path + "/fork"
        let forked = try await CLI.run(["train", "--data", dataRoot, "--resume", run.runDirectory, "--run-dir", fork,
                                        "--epochs", "3"], in: scratch.path)
        #expect(forked.status == 2, "stderr: \(forked.stderr)")
        #expect(forked.errorLines == result.errorLines)
        #expect(!FileManager.default.fileExists(atPath: fork), "the rejected resume left \(fork) behind")
    }

    @Test func resumeOfFinishedRunSaysHowToGoOn() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let run = try CLIRuns.copy(try await CLIRuns.twoEpochs.value, to: scratch.path + "/run")

        let result = try await CLI.run(["train", "--data", run.dataset.root, "--resume", run.runDirectory], in: scratch.path)

        result.expectSuccess()
        #expect(Array(result.stderrLines.prefix(2)) == [
            "resuming \(run.runDirectory) after epoch 2 of 2",
            "note: the run has finished its 2 epochs, so this only evaluates it again; pass --epochs 3 or more to train further",
        ])
    }

    @Test func resumeWithFewerEpochsIsRejected() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let run = try CLIRuns.copy(try await CLIRuns.twoEpochs.value, to: scratch.path + "/run")
        let before = try CLIFiles.snapshot(run.runDirectory)

        let result = try await CLI.run(["train", "--data", run.dataset.root, "--resume", run.runDirectory, "--epochs", "1"],
                                       in: scratch.path)

        result.expectRejected(status: 2, message: "--epochs 1 is fewer than the 2 epochs the run in \(run.runDirectory) has finished; pass --epochs 2 or more")
        #expect(try CLIFiles.snapshot(run.runDirectory) == before, "the run folder changed")
    }

    @Test func resumeWithoutCheckpointIsRejected() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = try scratch.makeFolder("run")

        let result = try await CLI.run(["train", "--data", dataset.root, "--resume", runDirectory, "--epochs", "2"],
                                       in: scratch.path)

        result.expectRejected(status: 2, message: "--resume \(runDirectory) has no checkpoint.safetensors; pass the --run-dir of an earlier run")
        #expect(try FileManager.default.contentsOfDirectory(atPath: runDirectory).isEmpty)
    }

    // MARK: Occupied run folders

    @Test func existingCheckpointIsNotOverwritten() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let run = try CLIRuns.copy(try await CLIRuns.twoEpochs.value, to: scratch.path + "/run")
        let before = try CLIFiles.snapshot(run.runDirectory)

        let result = try await train(data: run.dataset.root, runDirectory: run.runDirectory, in: scratch.path)

        result.expectRejected(status: 2, message: "--run-dir \(run.runDirectory) already contains a checkpoint; pass --resume \(run.runDirectory) to continue it, or choose another --run-dir")
        #expect(try CLIFiles.snapshot(run.runDirectory) == before, "the run folder changed")
    }

    @Test func lockedRunFolderIsRejected() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let dataset = try await CLIRuns.twoEpochs.value.dataset
        let runDirectory = scratch.path + "/run"
        // This test process plays the other run: it holds the folder's lock while npid starts.
        let lock = try RunFolderLock(runDirectory: runDirectory)

        let result = try await train(data: dataset.root, runDirectory: runDirectory, in: scratch.path)

        #expect(!result.timedOut)
        #expect(result.status == 1, "stderr: \(result.stderr)")
        #expect(result.errorLines == [CLI.errorPrefix + "another npid train is writing to --run-dir \(runDirectory); wait for it to end, stop it, or choose another --run-dir"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: runDirectory).isEmpty)
        withExtendedLifetime(lock) {}
    }

    @Test func lockedRunFolderStopsLauncher() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let dataset = try await CLIRuns.twoEpochs.value.dataset
        let runDirectory = scratch.path + "/run"
        let lock = try RunFolderLock(runDirectory: runDirectory)

        // The launcher fails before it starts any rank, so no rank waits at rendezvous.
        let result = try await train(data: dataset.root, runDirectory: runDirectory, in: scratch.path,
                                     extraFlags: ["--nproc", "2", "--dist-timeout", "60"])

        result.expectRejected(status: 1, message: "another npid train is writing to --run-dir \(runDirectory); wait for it to end, stop it, or choose another --run-dir")
        withExtendedLifetime(lock) {}
    }

    @Test func resumeIntoOtherRunIsRejected() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let shared = try await CLIRuns.twoEpochs.value
        let source = try CLIRuns.copy(shared, to: scratch.path + "/source")
        let other = try CLIRuns.copy(shared, to: scratch.path + "/other")
        let sourceBefore = try CLIFiles.snapshot(source.runDirectory)
        let otherBefore = try CLIFiles.snapshot(other.runDirectory)

        // --run-dir names a folder whose checkpoint belongs to another run.
        let result = try await CLI.run(["train", "--data", source.dataset.root, "--resume", source.runDirectory,
                                        "--run-dir", other.runDirectory, "--epochs", "3", "--workers", "0",
                                        "--threads", "1"],
                                       in: scratch.path)

        #expect(!result.timedOut)
        #expect(result.status == 2, "stdout: \(result.stdout)")
        #expect(result.stdout == "")
        #expect(result.errorLines.count == 1)
        #expect(result.errorLines.first?.contains(other.runDirectory) == true, "stderr: \(result.stderr)")
        #expect(try CLIFiles.snapshot(other.runDirectory) == otherBefore, "another run's files were overwritten")
        #expect(try CLIFiles.snapshot(source.runDirectory) == sourceBefore)
    }
}
