import CImageCodecs
import Foundation
import Testing
@testable import NPID

@Suite struct ImageFolderScanTests {
    /// A split folder with good PNGs of known pixels and some bad files.
    struct Fixture {
        let root: String
        /// Expected image of each good file, by path.
        var images: [String: RGBImage] = [:]
    }

    /// Writes `good` PNG files (8x6 noise) per class and the given bad files (relative path, bytes).
    static func makeFolder(classes: [String], good: Int, bad: [(String, [UInt8])]) throws -> Fixture {
        var fixture = Fixture(root: try TestImages.makeTemporaryFolder())
        for (classIndex, className) in classes.enumerated() {
            for number in 0..<good {
                let image = TestImages.noise(width: 8, height: 6, seed: UInt64(classIndex * 100 + number))
                let png = TestImages.encodePNG(width: 8, height: 6, format: PNG_FORMAT_RGB, pixels: image.pixels)
                let path = fixture.root + "/\(className)/\(number).png"
                try TestImages.write(png, to: path)
                fixture.images[path] = image
            }
        }
        for (relativePath, bytes) in bad {
            try TestImages.write(bytes, to: fixture.root + "/" + relativePath)
        }
        return fixture
    }

    static let truncatedJPEG: [UInt8] = {
        let jpeg = TestImages.encodeJPEG(TestImages.noise(width: 16, height: 16, seed: 1))
        return Array(jpeg.prefix(jpeg.count / 2))
    }()

    @Test func scanFindsBadFilesBeforeIndexing() throws {
        let fixture = try Self.makeFolder(classes: ["a", "b"], good: 3,
                                          bad: [("a/1x.jpg", Self.truncatedJPEG), ("b/0x.png", Array("text".utf8)),
                                                ("b/2x.png", [])])
        defer { TestImages.removeFolder(fixture.root) }
        let root = fixture.root
        let folder = try ImageFolder(split: root)
        #expect(folder.count == 9)

        let scan = ImageFolderScan(folder: folder, options: ImageScanOptions(threads: 2))

        #expect(scan.badFiles.map(\.path) == [root + "/a/1x.jpg", root + "/b/0x.png", root + "/b/2x.png"])
        #expect(scan.badFiles[1].error == .unsupportedFormat(path: root + "/b/0x.png"))
        #expect(scan.badFiles[2].error == .corruptImage(path: root + "/b/2x.png", message: "the file is empty"))
        guard case .corruptImage = scan.badFiles[0].error else {
            Issue.record("expected corruptImage for the truncated JPEG, got \(scan.badFiles[0].error)")
            return
        }
        #expect(scan.goodCount == 6)

        let store = try scan.makeStore(policy: .skip)
        #expect(store.paths == [root + "/a/0.png", root + "/a/1.png", root + "/a/2.png",
                                root + "/b/0.png", root + "/b/1.png", root + "/b/2.png"])
        #expect(store.labels == [0, 0, 0, 1, 1, 1])
        #expect(store.classNames == ["a", "b"])
        for index in 0..<store.count {
            #expect(try store[index] == fixture.images[store.paths[index]])
        }
        #expect(throws: DataError.badImages(files: scan.badFiles)) {
            try scan.makeStore(policy: .fail)
        }
    }

    @Test func skippingEveryImageOfClassThrows() throws {
        let fixture = try Self.makeFolder(classes: ["a"], good: 2,
                                          bad: [("b/0.jpg", Self.truncatedJPEG), ("c/0.png", [1, 2, 3])])
        defer { TestImages.removeFolder(fixture.root) }

        let scan = ImageFolderScan(folder: try ImageFolder(split: fixture.root), options: ImageScanOptions(threads: 1))

        let expected = DataError.noReadableImages(path: fixture.root, classNames: ["b", "c"])
        #expect(throws: expected) {
            try scan.makeStore(policy: .skip)
        }
        #expect(expected.description == "every image of class folders b, c in \(fixture.root) failed to decode, so none is left after skipping bad files; replace the files or remove the class folders")
    }

    @Test func cacheBudgetKeepsOnlyWhatFits() throws {
        let fixture = try Self.makeFolder(classes: ["a", "b"], good: 3, bad: [])
        defer { TestImages.removeFolder(fixture.root) }
        let imageBytes = 8 * 6 * 3
        let budget = ImageCacheBudget(bytes: 2 * imageBytes + imageBytes / 2)

        let scan = ImageFolderScan(folder: try ImageFolder(split: fixture.root),
                                   options: ImageScanOptions(threads: 2, cacheBudget: budget))
        let store = try scan.makeStore(policy: .fail)

        #expect(store.count == 6)
        #expect(store.cachedCount == 2)
        #expect(store.cachedBytes == 2 * imageBytes)
        #expect(budget.usedBytes == 2 * imageBytes)
        #expect(store.imageSizes.allSatisfy { $0 == ImageSize(width: 8, height: 6) })
        // Images outside the cache are decoded from their files and are the same.
        for index in 0..<store.count {
            #expect(try store[index] == fixture.images[store.paths[index]])
        }
    }

    @Test func uncachedStoreGivesSameBatches() throws {
        let fixture = try Self.makeFolder(classes: ["a", "b", "c"], good: 4, bad: [])
        defer { TestImages.removeFolder(fixture.root) }
        let folder = try ImageFolder(split: fixture.root)
        let cached = try ImageFolderScan(folder: folder, options: ImageScanOptions(threads: 2)).makeStore()
        let uncached = try ImageFolderScan(folder: folder, options: ImageScanOptions(
            threads: 2, cacheBudget: ImageCacheBudget(bytes: 0))).makeStore()
        #expect(uncached.cachedCount == 0)

        func batches(_ store: ImageStore, workers: Int) throws -> [Batch] {
            let loader = BatchLoader(store: store, transform: .train(TrainAugmentation(outputSize: 16)), batchSize: 5,
                                     shuffle: true, seed: 3, workers: workers)
            let epoch = loader.epoch(1)
            var result: [Batch] = []
            while let batch = try epoch.nextBatch() {
                result.append(batch)
            }
            return result
        }
        let reference = try batches(cached, workers: 0)
        #expect(reference.map(\.count) == [5, 5, 2])
        for workers in [0, 2] {
            let other = try batches(uncached, workers: workers)
            #expect(other.map(\.indices) == reference.map(\.indices), "workers \(workers)")
            #expect(other.map(\.pixels) == reference.map(\.pixels), "workers \(workers)")
        }
    }

    @Test(arguments: [0, 2])
    func fileChangedAfterScanFailsBatch(workers: Int) throws {
        let fixture = try Self.makeFolder(classes: ["a"], good: 6, bad: [])
        defer { TestImages.removeFolder(fixture.root) }
        let store = try ImageFolderScan(folder: try ImageFolder(split: fixture.root), options: ImageScanOptions(
            threads: 1, cacheBudget: ImageCacheBudget(bytes: 0))).makeStore()
        let changed = fixture.root + "/a/4.png"
        try TestImages.write(Array("replaced after the scan".utf8), to: changed)

        let loader = BatchLoader(store: store, transform: .plain(PlainTransform(outputSize: 8)), batchSize: 4,
                                 shuffle: false, seed: 0, workers: workers)
        let epoch = loader.epoch(0)

        #expect(try epoch.nextBatch()?.indices == [0, 1, 2, 3])
        #expect(throws: DataError.unsupportedFormat(path: changed)) {
            try epoch.nextBatch()
        }
        // The failed epoch is over: no more batches, and its workers have exited.
        #expect(try epoch.nextBatch() == nil)
        #expect(loader.liveWorkerCount == 0)
    }

    // MARK: Both splits

    @Test func trainingDataSkipsAndReportsBothSplits() throws {
        let train = try Self.makeFolder(classes: ["a", "b"], good: 2, bad: [("b/9.jpg", Self.truncatedJPEG)])
        let test = try Self.makeFolder(classes: ["a", "b"], good: 1, bad: [("a/5.png", [0x89, 0x50])])
        defer {
            TestImages.removeFolder(train.root)
            TestImages.removeFolder(test.root)
        }
        let source = DataSource.folders(train: train.root, test: test.root)

        let skipped = try TrainingData.load(source, limitPerClass: nil, testLimitPerClass: nil,
                                            options: DataLoadOptions(threads: 2, badImagePolicy: .skip))

        #expect(skipped.train.count == 4)
        #expect(skipped.test.count == 2)
        #expect(skipped.skippedFiles.map(\.path) == [train.root + "/b/9.jpg", test.root + "/a/5.png"])
        let error = #expect(throws: DataError.self) {
            try TrainingData.load(source, limitPerClass: nil, testLimitPerClass: nil,
                                  options: DataLoadOptions(threads: 2, badImagePolicy: .fail))
        }
        #expect(error == .badImages(files: skipped.skippedFiles))
    }

    @Test func cacheBudgetIsSharedBySplits() throws {
        // Two classes, because training data needs at least two.
        let train = try Self.makeFolder(classes: ["a", "b"], good: 2, bad: [])
        let test = try Self.makeFolder(classes: ["a", "b"], good: 2, bad: [])
        defer {
            TestImages.removeFolder(train.root)
            TestImages.removeFolder(test.root)
        }
        let budget = ImageCacheBudget(bytes: 5 * 8 * 6 * 3)

        let data = try TrainingData.load(.folders(train: train.root, test: test.root), limitPerClass: nil,
                                         testLimitPerClass: nil, options: DataLoadOptions(threads: 1, cacheBudget: budget))

        #expect(data.train.cachedCount == 4)
        #expect(data.test.cachedCount == 1)
    }

    // MARK: Messages

    @Test func badImagesMessageListsPaths() {
        let one = [BadImageFile(path: "/d/a.jpg", error: .corruptImage(path: "/d/a.jpg", message: "libjpeg-turbo: Bogus marker length"))]
        #expect(DataError.badImages(files: one).description == "cannot decode image /d/a.jpg (libjpeg-turbo: Bogus marker length); replace or delete the file, or pass --on-bad-image skip to leave it out")

        let two = one + [BadImageFile(path: "/d/b.png", error: .unsupportedFormat(path: "/d/b.png"))]
        #expect(DataError.badImages(files: two).description == "2 image files failed to decode: /d/a.jpg (libjpeg-turbo: Bogus marker length), /d/b.png (not a JPEG or PNG image); replace or delete them, or pass --on-bad-image skip to leave them out")

        let many = (0..<23).map { BadImageFile(path: "/d/\($0).png", error: .unsupportedFormat(path: "/d/\($0).png")) }
        let message = DataError.badImages(files: many).description
        #expect(message.hasPrefix("23 image files failed to decode: /d/0.png (not a JPEG or PNG image), "))
        #expect(message.contains("/d/19.png (not a JPEG or PNG image) and 3 more (npid check-data lists them all); "))
        #expect(!message.contains("/d/20.png"))
    }

    // MARK: Input defaults

    @Test func imageSizeFollowsMedianShorterSide() {
        let small = ImageSize(width: 32, height: 32)
        let large = ImageSize(width: 500, height: 375)
        #expect(TrainingConfiguration.defaultImageSize(for: [small, small, large]) == 32)
        #expect(TrainingConfiguration.defaultImageSize(for: [small, large, large]) == 224)
        #expect(TrainingConfiguration.defaultImageSize(for: [ImageSize(width: 300, height: 64)]) == 32)
        #expect(TrainingConfiguration.defaultImageSize(for: [ImageSize(width: 65, height: 300)]) == 224)
        #expect(TrainingConfiguration.defaultImageSize(for: []) == 32)
        #expect(Stem.defaultStem(forImageSize: 32) == .cifar)
        #expect(Stem.defaultStem(forImageSize: 64) == .cifar)
        #expect(Stem.defaultStem(forImageSize: 96) == .imagenet)
    }

    @Test func threadPlanSplitsCores() {
        let cpu = ThreadPlan.defaults(device: .cpu, coreCount: 2)
        #expect(cpu.threads == nil)
        #expect(cpu.workers == 1)
        let gpu = ThreadPlan.defaults(device: .cuda(0), coreCount: 16)
        #expect(gpu.threads == 1)
        #expect(gpu.workers == 15)
        let oneCore = ThreadPlan.defaults(device: .cuda(1), coreCount: 1)
        #expect(oneCore.threads == 1)
        #expect(oneCore.workers == 1)
    }
}
