import CImageCodecs
import Foundation
import Testing

/// Data options of `npid`: bad images, CIFAR binaries, downloads, split folders, check-data and
/// bench --loader, run as a separate process.
@Suite struct CLIDataTests {
    /// Writes a PNG of `width` x `height` noise to `relativePath` in `scratch`.
    @discardableResult
    static func writePNG(_ scratch: CLIScratchFolder, _ relativePath: String, width: Int, height: Int,
                         seed: UInt64 = 1) throws -> String {
        let image = TestImages.noise(width: width, height: height, seed: seed)
        return try scratch.write(TestImages.encodePNG(width: width, height: height, format: PNG_FORMAT_RGB,
                                                      pixels: image.pixels),
                                 to: relativePath)
    }

    static let truncatedJPEG: [UInt8] = {
        let jpeg = TestImages.encodeJPEG(TestImages.noise(width: 16, height: 16, seed: 3))
        return Array(jpeg.prefix(jpeg.count / 2))
    }()

    // MARK: check-data

    @Test func checkDataReportsClassesSizesAndBadFiles() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        try Self.writePNG(scratch, "data/train/cat/0.png", width: 40, height: 30)
        try Self.writePNG(scratch, "data/train/cat/1.png", width: 40, height: 30)
        let truncated = try scratch.write(Self.truncatedJPEG, to: "data/train/cat/2.jpg")
        try Self.writePNG(scratch, "data/train/dog/0.png", width: 30, height: 40)
        try scratch.write(Array("not listed".utf8), to: "data/train/dog/1.txt")
        try Self.writePNG(scratch, "data/test/cat/0.png", width: 40, height: 30)
        try Self.writePNG(scratch, "data/test/dog/0.png", width: 40, height: 30)
        let impostor = try scratch.write(Array("GIF89a".utf8), to: "data/test/dog/notes.jpg")
        let root = scratch.path + "/data"

        let result = try await CLI.run(["check-data", root], in: scratch.path)

        #expect(result.status == 1, "stderr: \(result.stderr)")
        #expect(result.stderr == "npid: error: 2 bad image files in \(root); replace or delete them, or train with --on-bad-image skip to leave them out\n")
        let lines = result.stdoutLines
        try #require(lines.count == 11, "stdout: \(result.stdout)")
        #expect(Array(lines[0..<9]) == [
            "\(root)/train: 3 images in 2 classes, 1 bad file",
            "\(root)/test: 2 images in 2 classes, 1 bad file",
            "class    train     test",
            "cat          2        1",
            "dog          1        1",
            "total        3        2",
            "image sizes: 40x30 (4), 30x40 (1)",
            "npid train would default to --image-size 32 with the cifar stem",
            "bad files (2):",
        ])
        #expect(lines[9].hasPrefix("  \(truncated): libjpeg-turbo: "), "line: \(lines[9])")
        #expect(lines[10] == "  \(impostor): not a JPEG or PNG image")
    }

    /// Folders inside class folders are listed, ten at most, because their images are not read.
    @Test func checkDataListsNestedFolders() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        try Self.writePNG(scratch, "photos/bird/a.png", width: 40, height: 30)
        try Self.writePNG(scratch, "photos/fish/a.png", width: 40, height: 30)
        for month in 1...12 {
            try Self.writePNG(scratch, String(format: "photos/fish/2019-%02d/b.png", month), width: 40, height: 30)
        }
        let root = scratch.path + "/photos"

        let result = try await CLI.run(["check-data", root], in: scratch.path)

        result.expectSuccess()
        let lines = result.stdoutLines
        try #require(lines.count == 20, "stdout: \(result.stdout)")
        #expect(lines[0] == "\(root): 2 images in 2 classes, no bad files")
        #expect(lines[8] == "folders inside class folders, not read (12):")
        #expect(Array(lines[9..<19]) == (1...10).map { String(format: "  \(root)/fish/2019-%02d", $0) })
        #expect(lines[19] == "  and 2 more")
    }

    /// Files of other image formats (a phone's HEIC, a browser's WebP) are listed, ten at most,
    /// because npid leaves them out of every split.
    @Test func checkDataListsOtherImageFormats() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        try Self.writePNG(scratch, "photos/bird/a.png", width: 40, height: 30)
        try Self.writePNG(scratch, "photos/fish/a.png", width: 40, height: 30)
        try scratch.write(Array("not listed".utf8), to: "photos/fish/notes.txt")
        for index in 1...11 {
            try scratch.write(Array("GIF89a".utf8), to: String(format: "photos/fish/IMG_%02d.HEIC", index))
        }
        let root = scratch.path + "/photos"

        let result = try await CLI.run(["check-data", root], in: scratch.path)

        result.expectSuccess()
        let lines = result.stdoutLines
        try #require(lines.count == 20, "stdout: \(result.stdout)")
        #expect(lines[1] == "class   images")
        #expect(lines[3] == "fish         1")
        #expect(lines[8] == "files of other image formats, not read (11); save them as .jpg or .png files to use them:")
        #expect(Array(lines[9..<19]) == (1...10).map { String(format: "  \(root)/fish/IMG_%02d.HEIC", $0) })
        #expect(lines[19] == "  and 1 more")
    }

    /// A run folder inside a split would add its report pictures to a class, or become a class.
    @Test func runFolderInsideSplitIsRejected() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        for split in ["train", "test"] {
            for name in ["bird", "fish"] {
                try Self.writePNG(scratch, "photos/\(split)/\(name)/a.png", width: 40, height: 30)
            }
        }
        let root = scratch.path + "/photos"

        for runDirectory in [root + "/train/bird", root + "/train/run1", root + "/test", root + "/test/../train/run2"] {
            let result = try await CLI.run(["train", "--data", root, "--run-dir", runDirectory, "--epochs", "1"]
                                           + CLIRuns.smallModelFlags, in: scratch.path)

            let split = runDirectory.contains("/test") && !runDirectory.contains("..") ? "test" : "train"
            result.expectRejected(status: 2, message: "--run-dir \(runDirectory) would put the run's files in the data split \(root)/\(split), where they would become training images or classes; choose a --run-dir outside \(root)/\(split)")
        }
        let birdFiles = try FileManager.default.contentsOfDirectory(atPath: root + "/train/bird")
        #expect(birdFiles == ["a.png"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/train").sorted() == ["bird", "fish"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/test").sorted() == ["bird", "fish"])
    }

    /// A run folder that does not exist yet is still found inside a split reached through a
    /// symbolic link, as in --data photos where photos links to a data disk.
    @Test func runFolderInsideLinkedSplitIsRejected() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        for split in ["train", "test"] {
            for name in ["bird", "fish"] {
                try Self.writePNG(scratch, "disk/photos/\(split)/\(name)/a.png", width: 40, height: 30)
            }
        }
        try FileManager.default.createSymbolicLink(atPath: scratch.path + "/photos", withDestinationPath: "disk/photos")

        let result = try await CLI.run(["train", "--data", "photos", "--run-dir", "photos/train/run1", "--epochs", "1"]
                                       + CLIRuns.smallModelFlags, in: scratch.path)

        result.expectRejected(status: 2, message: "--run-dir photos/train/run1 would put the run's files in the data split photos/train, where they would become training images or classes; choose a --run-dir outside photos/train")
        let trainFolders = try FileManager.default.contentsOfDirectory(atPath: scratch.path + "/disk/photos/train")
        #expect(trainFolders.sorted() == ["bird", "fish"])
    }

    @Test func checkDataOfCleanSingleSplit() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        try Self.writePNG(scratch, "photos/bird/a.png", width: 100, height: 80)
        try Self.writePNG(scratch, "photos/bird/b.png", width: 120, height: 90)
        try Self.writePNG(scratch, "photos/fish/a.png", width: 100, height: 80)
        let root = scratch.path + "/photos"

        let result = try await CLI.run(["check-data", root + "/"], in: scratch.path)

        result.expectSuccess()
        #expect(result.stderr == "")
        #expect(result.stdoutLines == [
            "\(root): 3 images in 2 classes, no bad files",
            "class   images",
            "bird         2",
            "fish         1",
            "total        3",
            "image sizes: 100x80 (2), 120x90 (1); shorter side 80 to 90 px, median 80 px",
            "npid train would default to --image-size 224 with the imagenet stem",
            "bad files: none",
        ])
    }

    @Test func checkDataNeedsOneFolder() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["check-data"], in: scratch.path)

        result.expectRejected(status: 2, message: "npid check-data needs the folder to check; run npid check-data --help for an example")
    }

    /// Runs check-data and train on `root` and checks that both reject it with exit status 2 and
    /// the one error line `message`, after check-data printed its summary.
    static func expectCheckDataRejectsAsTrain(_ root: String, message: String, in scratch: CLIScratchFolder,
                                              sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let checked = try await CLI.run(["check-data", root], in: scratch.path)
        let trained = try await CLI.run(["train", "--data", root, "--run-dir", scratch.path + "/run"], in: scratch.path)

        trained.expectRejected(status: 2, message: message, sourceLocation: sourceLocation)
        #expect(checked.status == 2, "stderr: \(checked.stderr)", sourceLocation: sourceLocation)
        #expect(checked.stderr == CLI.errorPrefix + message + "\n", sourceLocation: sourceLocation)
        #expect(checked.stdoutLines.last == "bad files: none", "stdout: \(checked.stdout)", sourceLocation: sourceLocation)
    }

    @Test func checkDataRejectsMissingTestSplit() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        try Self.writePNG(scratch, "data/train/cat/0.png", width: 8, height: 8)
        try Self.writePNG(scratch, "data/train/dog/0.png", width: 8, height: 8)
        let root = scratch.path + "/data"

        try await Self.expectCheckDataRejectsAsTrain(root, message: "data folder \(root)/test does not exist or is not a folder; pass --data ROOT where ROOT contains train/ and test/ folders with one sub-folder per class", in: scratch)
    }

    @Test func checkDataRejectsMissingTrainSplit() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        try Self.writePNG(scratch, "data/test/cat/0.png", width: 8, height: 8)
        try Self.writePNG(scratch, "data/test/dog/0.png", width: 8, height: 8)
        let root = scratch.path + "/data"

        try await Self.expectCheckDataRejectsAsTrain(root, message: "data folder \(root)/train does not exist or is not a folder; pass --data ROOT where ROOT contains train/ and test/ folders with one sub-folder per class", in: scratch)
    }

    /// Split folders named Train/ and Test/ are named in the error, instead of being taken for
    /// class folders by check-data.
    @Test func splitFoldersInOtherCaseAreNamed() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        for split in ["Train", "Test"] {
            try Self.writePNG(scratch, "data/\(split)/cat/0.png", width: 8, height: 8)
            try Self.writePNG(scratch, "data/\(split)/dog/0.png", width: 8, height: 8)
        }
        try Self.writePNG(scratch, "mixed/train/cat/0.png", width: 8, height: 8)
        try Self.writePNG(scratch, "mixed/train/dog/0.png", width: 8, height: 8)
        try Self.writePNG(scratch, "mixed/Test/cat/0.png", width: 8, height: 8)
        try Self.writePNG(scratch, "mixed/Test/dog/0.png", width: 8, height: 8)
        let advice = "and npid reads the split folders train/ and test/ in lower case; rename the split folders, or pass them with --train-dir and --test-dir"

        for (root, split, otherCase) in [("data", "train", "Train"), ("mixed", "test", "Test")] {
            let path = scratch.path + "/" + root
            let checked = try await CLI.run(["check-data", path], in: scratch.path)
            let trained = try await CLI.run(["train", "--data", path, "--run-dir", scratch.path + "/run"], in: scratch.path)

            let message = "data folder \(path)/\(split) does not exist, but \(path)/\(otherCase) does, " + advice
            // check-data prints the summary of a split it found before it names the missing one.
            #expect(checked.status == 2, "stderr: \(checked.stderr)")
            #expect(checked.stderr == CLI.errorPrefix + message + "\n")
            trained.expectRejected(status: 2, message: message)
        }
    }

    /// A class folder named Train, with no Test beside it, is a class like any other.
    @Test func checkDataKeepsClassNamedTrain() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        try Self.writePNG(scratch, "vehicles/Bus/0.png", width: 8, height: 8)
        try Self.writePNG(scratch, "vehicles/Train/0.png", width: 8, height: 8)
        let root = scratch.path + "/vehicles"

        let result = try await CLI.run(["check-data", root], in: scratch.path)

        result.expectSuccess()
        #expect(result.stdoutLines.first == "\(root): 2 images in 2 classes, no bad files", "stdout: \(result.stdout)")
    }

    @Test func checkDataRejectsSingleClass() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        try Self.writePNG(scratch, "data/train/cat/0.png", width: 8, height: 8)
        try Self.writePNG(scratch, "data/test/cat/0.png", width: 8, height: 8)
        let root = scratch.path + "/data"

        try await Self.expectCheckDataRejectsAsTrain(root, message: "data folder \(root)/train contains a single class folder, cat; the kNN evaluation needs at least two classes, so add another class folder to both train/ and test/", in: scratch)
    }

    /// A folder of class folders alone is checked as a future --train-dir, which needs two classes too.
    @Test func checkDataRejectsSingleClassFolder() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        try Self.writePNG(scratch, "photos/bird/0.png", width: 8, height: 8)
        let root = scratch.path + "/photos"

        let result = try await CLI.run(["check-data", root], in: scratch.path)

        #expect(result.status == 2, "stderr: \(result.stderr)")
        #expect(result.stdoutLines.first == "\(root): 1 image in 1 class, no bad files", "stdout: \(result.stdout)")
        #expect(result.stderr == CLI.errorPrefix + "data folder \(root) contains a single class folder, bird; the kNN evaluation needs at least two classes, so add another class folder to both train/ and test/\n")
    }

    /// A class whose files all fail to decode cannot be trained on with --on-bad-image skip
    /// either, so check-data gives train's error for that instead of suggesting skip.
    @Test func checkDataNamesClassWithOnlyBadFiles() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        for split in ["train", "test"] {
            try Self.writePNG(scratch, "data/\(split)/cat/0.png", width: 8, height: 8)
            try Self.writePNG(scratch, "data/\(split)/dog/0.png", width: 8, height: 8)
        }
        _ = try scratch.write(Array("not an image".utf8), to: "data/train/dog/0.png")
        let root = scratch.path + "/data"

        let checked = try await CLI.run(["check-data", root], in: scratch.path)
        let trained = try await CLI.run(["train", "--data", root, "--run-dir", scratch.path + "/run",
                                         "--on-bad-image", "skip"], in: scratch.path)

        let message = "every image of class folder dog in \(root)/train failed to decode, so none is left after skipping bad files; replace the files or remove the class folder"
        #expect(checked.status == 1, "stderr: \(checked.stderr)")
        #expect(checked.stderr == CLI.errorPrefix + message + "\n")
        #expect(checked.stdoutLines.contains("bad files (1):"), "stdout: \(checked.stdout)")
        #expect(trained.status == 1, "stderr: \(trained.stderr)")
        #expect(trained.errorLines == [CLI.errorPrefix + message])
    }

    @Test func checkDataRejectsFile() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let file = try scratch.write(Array("not a folder".utf8), to: "data.txt")

        let checked = try await CLI.run(["check-data", file], in: scratch.path)
        let trained = try await CLI.run(["train", "--data", file, "--run-dir", scratch.path + "/run"], in: scratch.path)

        let message = "\(file) is a file, not a folder; pass the image folder that contains train/ and test/ folders of class sub-folders"
        checked.expectRejected(status: 2, message: message)
        trained.expectRejected(status: 2, message: message)
    }

    // MARK: Bad images in training

    /// Copies the shared data set and breaks `count` training images of its second class.
    static func dataWithBadImages(_ scratch: CLIScratchFolder, count: Int) throws -> (root: String, bad: [String]) {
        let dataset = try CLIDataset.shared.get()
        let root = scratch.path + "/data"
        try FileManager.default.copyItem(atPath: dataset.root, toPath: root)
        let classFolder = root + "/train/" + dataset.classNames[1]
        let files = try FileManager.default.contentsOfDirectory(atPath: classFolder).sorted()
        var bad: [String] = []
        for file in files.prefix(count) {
            let path = classFolder + "/" + file
            let original = try CLIFiles.bytes(path)
            try Data(original.prefix(original.count / 3)).write(to: URL(fileURLWithPath: path))
            bad.append(path)
        }
        return (root, bad)
    }

    @Test func trainSkipsBadImageWithWarning() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let (root, bad) = try Self.dataWithBadImages(scratch, count: 1)
        let runDirectory = scratch.path + "/run"

        let result = try await CLI.run(["train", "--data", root, "--run-dir", runDirectory, "--epochs", "1",
                                        "--on-bad-image", "skip"] + CLIRuns.smallModelFlags,
                                       in: scratch.path)

        result.expectSuccess()
        let warnings = result.stderrLines.filter { $0.hasPrefix("warning: left out") }
        #expect(warnings.count == 1)
        #expect(warnings.first?.hasPrefix("warning: left out 1 bad image file (--on-bad-image skip): \(bad[0]) (libjpeg-turbo: ") == true,
                "stderr: \(result.stderr)")
        // 3 classes of 8 training images, less the skipped one; the bank has one row per kept image.
        #expect(result.stderrLines.contains { $0.hasPrefix("training on 23 images of 3 classes, testing on 12;") },
                "stderr: \(result.stderr)")
    }

    @Test func trainListsEveryBadImage() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let (root, bad) = try Self.dataWithBadImages(scratch, count: 2)
        let runDirectory = scratch.path + "/run"

        let result = try await CLI.run(["train", "--data", root, "--run-dir", runDirectory, "--epochs", "1"]
                                           + CLIRuns.smallModelFlags,
                                       in: scratch.path)

        #expect(result.status == 1, "stderr: \(result.stderr)")
        #expect(result.stderrLines.count == 1, "stderr: \(result.stderr)")
        let message = result.stderr
        #expect(message.hasPrefix("npid: error: 2 image files failed to decode: \(bad[0]) (libjpeg-turbo: "), "stderr: \(message)")
        #expect(message.contains("), \(bad[1]) (libjpeg-turbo: "), "stderr: \(message)")
        #expect(message.hasSuffix("); replace or delete them, or pass --on-bad-image skip to leave them out\n"))
        #expect(!FileManager.default.fileExists(atPath: runDirectory))
    }

    /// The launcher counts image files without decoding them, so a run that left one out
    /// has a bank row fewer than the folder has files. Its message points at the flag.
    @Test func launcherResumeSuggestsSkipAgain() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let dataRoot = scratch.path + "/data"
        try FileManager.default.copyItem(atPath: dataset.root, toPath: dataRoot)
        let classFolder = dataRoot + "/train/" + dataset.classNames[0]
        let firstImage = try FileManager.default.contentsOfDirectory(atPath: classFolder).sorted()[0]
        try scratch.write(Array("not an image".utf8), to: "data/train/\(dataset.classNames[0])/\(firstImage)")
        let runDirectory = scratch.path + "/run"
        let trained = try await CLI.run(["train", "--data", dataRoot, "--run-dir", runDirectory, "--epochs", "1",
                                         "--on-bad-image", "skip"] + CLIRuns.smallModelFlags,
                                        in: scratch.path)
        trained.expectSuccess()

        let result = try await CLI.run(["train", "--data", dataRoot, "--resume", runDirectory, "--epochs", "2",
                                        "--nproc", "2", "--threads", "1"], in: scratch.path)

        result.expectRejected(status: 2, message: "checkpoint \(runDirectory)/checkpoint.safetensors has a memory bank of \(dataset.trainCount - 1) rows, but the data has \(dataset.trainCount) training images; resume with the same --data and --limit-per-class, and with --on-bad-image skip if the run left out images that did not decode")
    }

    // MARK: CIFAR binaries and downloads

    @Test func trainReadsCIFARBinaries() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let folder = try CIFARFixtures.writeCIFAR10(under: scratch.path + "/cifar")
        let runDirectory = scratch.path + "/run"

        let result = try await CLI.run(["train", "--dataset", "cifar10", "--data", folder, "--run-dir", runDirectory,
                                        "--epochs", "1", "--width", "4", "--low-dim", "8", "-b", "4", "--nce-k", "0",
                                        "--knn-k", "3", "--workers", "0", "--threads", "1"],
                                       in: scratch.path)

        result.expectSuccess()
        #expect(result.stderrLines.contains { $0.hasPrefix("training on 10 images of 10 classes, testing on 3;") },
                "stderr: \(result.stderr)")
        let configuration = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: runDirectory + "/config.json"))) as? [String: Any]
        #expect(configuration?["imageSize"] as? Int == 32)
    }

    @Test func cifarBankMismatchNamesBatchFolder() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let folder = try CIFARFixtures.writeCIFAR10(under: scratch.path + "/cifar")
        let runDirectory = scratch.path + "/run"
        let trained = try await CLI.run(["train", "--dataset", "cifar10", "--data", folder, "--run-dir", runDirectory,
                                         "--epochs", "1", "--width", "4", "--low-dim", "8", "-b", "4", "--nce-k", "0",
                                         "--knn-k", "3", "--workers", "0", "--threads", "1"],
                                        in: scratch.path)
        trained.expectSuccess()
        // Swapping two batch files keeps the classes and the record count but pairs the
        // records with other labels, so the bank's rows no longer fit the images.
        let otherFolder = try CIFARFixtures.writeCIFAR10(under: scratch.path + "/other")
        let first = otherFolder + "/data_batch_1.bin"
        let second = otherFolder + "/data_batch_2.bin"
        try FileManager.default.moveItem(atPath: first, toPath: otherFolder + "/swap")
        try FileManager.default.moveItem(atPath: second, toPath: first)
        try FileManager.default.moveItem(atPath: otherFolder + "/swap", toPath: second)

        let result = try await CLI.run(["eval", "--checkpoint", runDirectory + "/checkpoint.safetensors",
                                        "--dataset", "cifar10", "--data", otherFolder, "--threads", "1"],
                                       in: scratch.path)

        result.expectRejected(status: 2, message: "checkpoint \(runDirectory)/checkpoint.safetensors contains memory bank rows of other images than \(otherFolder): the classes and image counts match, but the file names or sizes differ; pass the data folder the run trained on, or --recompute to compute the features of these images")
    }

    @Test func downloadFetchesIntoCache() async throws {
        guard DatasetDownloadTests.programsAvailable("downloadFetchesIntoCache") else { return }
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let bytes = try CIFARFixtures.cifar10Archive(in: scratch.path)
        let server = try LoopbackHTTPServer(routes: ["/c10.tar.gz": .body(bytes)])
        defer { server.stop() }
        let cacheHome = scratch.path + "/cache"
        let environment = ["XDG_CACHE_HOME": cacheHome, "NPID_CIFAR10_URL": server.url("/c10.tar.gz"),
                           "NPID_CIFAR10_MD5": CIFARFixtures.md5(bytes)]

        let result = try await CLI.run(["bench", "--loader", "--dataset", "cifar10", "--download", "--batches", "2",
                                        "-b", "4", "--workers", "0"],
                                       in: scratch.path, environment: environment)

        result.expectSuccess()
        let cache = cacheHome + "/swift-npid"
        #expect(result.stderrLines == [
            "downloading CIFAR-10 from \(server.url("/c10.tar.gz")) into \(cache)",
            "extracting \(cache)/cifar-10-binary.tar.gz (MD5 \(CIFARFixtures.md5(bytes)) verified)",
            "CIFAR-10 binary files ready in \(cache)/cifar-10-batches-bin",
        ])
        #expect(result.stdout.contains(#""training_images": 10"#), "stdout: \(result.stdout)")
        #expect(DatasetDownloadTests.listing(cache) == ["cifar-10-batches-bin", "cifar-10-binary.tar.gz"])
    }

    @Test func corruptDownloadFailsAndCachesNothing() async throws {
        guard DatasetDownloadTests.programsAvailable("corruptDownloadFailsAndCachesNothing") else { return }
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        var bytes = try CIFARFixtures.cifar10Archive(in: scratch.path)
        let published = CIFARFixtures.md5(bytes)
        bytes[100] ^= 1
        let server = try LoopbackHTTPServer(routes: ["/c10.tar.gz": .body(bytes)])
        defer { server.stop() }
        let cacheHome = scratch.path + "/cache"
        let url = server.url("/c10.tar.gz")
        let environment = ["XDG_CACHE_HOME": cacheHome, "NPID_CIFAR10_URL": url, "NPID_CIFAR10_MD5": published]

        let result = try await CLI.run(["train", "--dataset", "cifar10", "--download", "--run-dir", scratch.path + "/run",
                                        "--epochs", "1"] + CLIRuns.smallModelFlags,
                                       in: scratch.path, environment: environment)

        #expect(result.status == 1, "stderr: \(result.stderr)")
        #expect(result.stderrLines.last == "npid: error: download of \(url) has MD5 \(CIFARFixtures.md5(bytes)), not the published \(published); the file was deleted, so run again, and if it persists download the archive by hand")
        #expect(DatasetDownloadTests.listing(cacheHome + "/swift-npid") == [])
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/run"))
    }

    @Test func cifarWithoutDataOrDownloadIsExplained() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let cacheHome = scratch.path + "/empty-cache"

        let result = try await CLI.run(["bench", "--loader", "--dataset", "cifar100"], in: scratch.path,
                                       environment: ["XDG_CACHE_HOME": cacheHome])

        result.expectRejected(status: 2, message: "folder \(cacheHome)/swift-npid does not exist; pass --data the folder where the official CIFAR-100 binary archive was extracted, or add --download to fetch it")
    }

    // MARK: Split folders, input size and the loader benchmark

    /// Commands that load data note folders inside class folders, whose images they leave out.
    @Test func loadingNotesNestedFolders() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        for split in ["train", "test"] {
            try Self.writePNG(scratch, "data/\(split)/cat/a.png", width: 32, height: 32)
            try Self.writePNG(scratch, "data/\(split)/dog/a.png", width: 32, height: 32)
        }
        try Self.writePNG(scratch, "data/train/dog/old/b.png", width: 32, height: 32)
        try Self.writePNG(scratch, "data/test/cat/old/b.png", width: 32, height: 32)
        let root = scratch.path + "/data"

        let result = try await CLI.run(["bench", "--loader", "--data", root, "--batches", "1", "-b", "2"], in: scratch.path)

        result.expectSuccess()
        #expect(result.stderrLines == ["note: 2 folders inside class folders, such as \(root)/train/dog/old, are not read; npid reads only the images directly in each class folder"])
        #expect(result.stdout.contains(#""training_images": 2"#), "stdout: \(result.stdout)")
    }

    @Test func benchLoaderPrintsJSON() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["bench", "--loader", "--train-dir", dataset.root + "/train",
                                        "--test-dir", dataset.root + "/test", "--batches", "3", "-b", "5"],
                                       in: scratch.path)

        result.expectSuccess()
        #expect(result.stderr == "")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(object["event"] as? String == "bench")
        #expect(object["mode"] as? String == "loader")
        #expect(object["batches"] as? Int == 3)
        #expect(object["batch_size"] as? Int == 5)
        #expect(object["images"] as? Int == 15)
        #expect(object["image_size"] as? Int == 32)
        #expect(object["workers"] as? Int == 1)
        #expect(object["training_images"] as? Int == 24)
        #expect(object["cached_images"] as? Int == 24)
        let rate = try #require(object["images_per_s"] as? Double)
        let seconds = try #require(object["seconds"] as? Double)
        #expect(rate > 0)
        #expect(abs(rate * seconds - 15) < 0.5)
    }

    @Test func largeImagesGetImageNetInput() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        for (split, count) in [("train", 4), ("test", 2)] {
            for className in ["a", "b"] {
                for number in 0..<count {
                    try Self.writePNG(scratch, "data/\(split)/\(className)/\(number).png", width: 80, height: 72,
                                      seed: UInt64(number))
                }
            }
        }
        let runDirectory = scratch.path + "/run"

        // Width 16, because narrower channels-last ResNets crash in libtorch 2.11's CPU backward pass at
        // inputs of 64 pixels and more (PyTorch 2.11 from Python crashes the same way).
        let result = try await CLI.run(["train", "--data", scratch.path + "/data", "--run-dir", runDirectory,
                                        "--epochs", "1", "--width", "16", "--low-dim", "8", "-b", "4", "--nce-k", "0",
                                        "--knn-k", "3", "--workers", "0", "--threads", "1"],
                                       in: scratch.path)

        result.expectSuccess()
        #expect(result.stderrLines.contains("network input 224x224 pixels with the imagenet stem"), "stderr: \(result.stderr)")
        let configuration = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: runDirectory + "/config.json"))) as? [String: Any])
        #expect(configuration["imageSize"] as? Int == 224)
        let model = try #require(configuration["model"] as? [String: Any])
        #expect(model["stem"] as? String == "imagenet")
    }

    /// One invalid combination of data options and its message.
    struct InvalidDataFlags: Sendable, CustomTestStringConvertible {
        let flags: [String]
        let message: String

        var testDescription: String { flags.joined(separator: " ") }
    }

    static let invalidDataFlags: [InvalidDataFlags] = [
        InvalidDataFlags(flags: ["--dataset", "imagenet"], message: "unknown --dataset 'imagenet'; choose folder, cifar10 or cifar100"),
        InvalidDataFlags(flags: ["--data", "x", "--download"],
                         message: "--download fetches only --dataset cifar10 or cifar100; image folders are read from --data or --train-dir and --test-dir"),
        InvalidDataFlags(flags: ["--train-dir", "x"],
                         message: "--train-dir needs --test-dir too; pass both split folders, or --data ROOT with train/ and test/ inside"),
        InvalidDataFlags(flags: ["--data", "x", "--train-dir", "x", "--test-dir", "y"],
                         message: "pass either --data ROOT or --train-dir and --test-dir, not both"),
        InvalidDataFlags(flags: ["--train-dir", "x", "--test-dir", "y"],
                         message: "--train-dir x does not exist or is not a folder; pass a folder with one sub-folder per class"),
        InvalidDataFlags(flags: ["--train-dir", ".", "--test-dir", "y"],
                         message: "--test-dir y does not exist or is not a folder; pass a folder with one sub-folder per class"),
        InvalidDataFlags(flags: ["--dataset", "cifar10", "--test-dir", "x"],
                         message: "--test-dir applies to image folders, not --dataset cifar10; pass the folder of the binary archive with --data"),
        InvalidDataFlags(flags: ["--data", "x", "--on-bad-image", "ignore"], message: "unknown --on-bad-image 'ignore'; choose fail or skip"),
        InvalidDataFlags(flags: ["--data", "x", "--cache-mb", "-1"], message: "--cache-mb must be 0 or more, got -1"),
        InvalidDataFlags(flags: ["--data", "x", "--image-size", "4"], message: "--image-size must be at least 8 pixels, got 4"),
        InvalidDataFlags(flags: ["--data", "x", "--stem", "vit"], message: "unknown --stem 'vit'; choose cifar or imagenet"),
    ]

    @Test(arguments: invalidDataFlags)
    func trainRejectsInvalidDataFlags(_ invalid: InvalidDataFlags) async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"

        let result = try await CLI.run(["train", "--run-dir", runDirectory, "--epochs", "1"] + invalid.flags,
                                       in: scratch.path)

        result.expectRejected(status: 2, message: invalid.message)
        #expect(!FileManager.default.fileExists(atPath: runDirectory))
    }

    /// Tens of thousands of threads would take minutes to start, so such counts are rejected.
    @Test func threadCountsBeyondLimitRejected() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let limit = max(64, 4 * cores)
        let coreCount = cores == 1 ? "1 core" : "\(cores) cores"

        let check = try await CLI.run(["check-data", dataset.root, "--threads", "100000"], in: scratch.path)
        let train = try await CLI.run(["train", "--data", dataset.root, "--run-dir", scratch.path + "/run",
                                       "--workers", "\(limit + 1)"], in: scratch.path)

        check.expectRejected(status: 2, message: "--threads 100000 is more than \(limit), the limit for this machine's \(coreCount); pass at most \(limit), and about one per core for speed")
        train.expectRejected(status: 2, message: "--workers \(limit + 1) is more than \(limit), the limit for this machine's \(coreCount); pass at most \(limit), and about one per core for speed")
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/run"))
    }

    @Test func benchNeedsMode() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["bench", "--data", scratch.path], in: scratch.path)

        result.expectRejected(status: 2, message: "npid bench needs exactly one mode, one of --loader, --train, --eval, --knn; run npid bench --help for the options")
    }
}
