import Foundation
import Testing
@testable import NPID

/// Tests of the fingerprint that ties a memory bank's rows to their training images.
@Suite struct TrainingImageListTests {
    static func store(root: String, names: [String], labels: [Int], classNames: [String] = ["cat", "dog"]) -> ImageStore {
        let image = TestImages.gradient(width: 2, height: 2)
        return ImageStore(images: names.map { _ in image }, labels: labels, classNames: classNames,
                          paths: names.map { root + "/" + $0 })
    }

    @Test func fingerprintOfKnownNames() throws {
        let store = Self.store(root: "/data/train", names: ["cat/0001.jpg", "cat/0002.jpg", "dog/0001.png"],
                               labels: [0, 0, 1])

        // CRC-32C values computed with a bitwise implementation of the reflected polynomial
        // 0x82F63B78 in Python. These files do not exist, so their sizes read "-".
        // Version 2: "cat/0001.jpg -\ncat/0002.jpg -\ndog/0001.png -\n".
        #expect(TrainingImageList.fingerprint(of: store) == "2/3:2e2e4670")
        // Version 1, names only: "cat/0001.jpg\ncat/0002.jpg\ndog/0001.png\n".
        let version1 = TrainingImageList.fingerprint(paths: store.paths, labels: store.labels,
                                                     classNames: store.classNames, like: "3:00000000")
        #expect(version1 == "3:be7e5b72")
    }

    @Test func sameNamesOfOtherSizesDiffer() throws {
        let root = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(root) }
        // Two splits whose files share names, as CIFAR-10's train/ and test/ folders do.
        for (split, bytes) in [("train", 10), ("test", 11)] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(split)/cat", withIntermediateDirectories: true)
            try Data(repeating: 7, count: bytes).write(to: URL(fileURLWithPath: "\(root)/\(split)/cat/0000.jpg"))
        }
        let train = Self.store(root: root + "/train", names: ["cat/0000.jpg"], labels: [0], classNames: ["cat"])
        let test = Self.store(root: root + "/test", names: ["cat/0000.jpg"], labels: [0], classNames: ["cat"])

        #expect(TrainingImageList.fingerprint(of: train) != TrainingImageList.fingerprint(of: test))
        let version1 = { (store: ImageStore) in
            TrainingImageList.fingerprint(paths: store.paths, labels: store.labels, classNames: store.classNames,
                                          like: "1:00000000")
        }
        #expect(version1(train) == version1(test))
    }

    @Test func movedDatasetKeepsItsFingerprint() throws {
        let names = ["cat/a.jpg", "dog/b.jpg"]
        let original = Self.store(root: "/data/train", names: names, labels: [0, 1])
        let moved = Self.store(root: "/mnt/copy/of/train/", names: names, labels: [0, 1])

        #expect(TrainingImageList.fingerprint(of: original) == TrainingImageList.fingerprint(of: moved))
    }

    @Test(arguments: [
        (["cat/a.jpg", "dog/c.jpg"], ["cat", "dog"]),  // one file replaced by another
        (["cat/a.jpg", "dog/b.jpg"], ["cat", "fox"]),  // one class renamed
    ])
    func otherImagesChangeFingerprint(names: [String], classNames: [String]) throws {
        let original = Self.store(root: "/data/train", names: ["cat/a.jpg", "dog/b.jpg"], labels: [0, 1])
        let other = Self.store(root: "/data/train", names: names, labels: [0, 1], classNames: classNames)

        #expect(TrainingImageList.fingerprint(of: original) != TrainingImageList.fingerprint(of: other))
    }

    @Test func relativeDataStaysRelative() throws {
        var checkpoint = try CheckpointSamples.checkpoint()
        checkpoint.trainingImages = "2:00000000"
        let store = Self.store(root: "data/train", names: ["cat/a.jpg", "dog/b.jpg"], labels: [0, 1])

        #expect(throws: UsageError("checkpoint c.safetensors contains memory bank rows of other images than data/train: the classes and image counts match, but the file names or sizes differ; do this")) {
            try checkpoint.checkTrainingImages(store, path: "c.safetensors", advice: "do this")
        }
    }

    @Test func imagesWithoutFileNamesHaveNoFingerprint() throws {
        let image = TestImages.gradient(width: 2, height: 2)
        let store = ImageStore(images: [image, image], labels: [0, 1], classNames: ["cat", "dog"])

        #expect(TrainingImageList.fingerprint(of: store) == nil)
    }

    @Test func checkpointRejectsOtherImages() throws {
        let store = Self.store(root: "/data/train", names: ["cat/a.jpg", "dog/b.jpg"], labels: [0, 1])
        var checkpoint = try CheckpointSamples.checkpoint()
        #expect(try Checkpoint.parse(try checkpoint.serialized()).trainingImages == nil)
        try checkpoint.checkTrainingImages(store, path: "old.safetensors", advice: "unused")

        checkpoint.trainingImages = TrainingImageList.fingerprint(of: store)
        let restored = try Checkpoint.parse(try checkpoint.serialized())
        #expect(restored.trainingImages == TrainingImageList.fingerprint(of: store))
        try restored.checkTrainingImages(store, path: "c.safetensors", advice: "unused")

        let other = Self.store(root: "/data/train", names: ["cat/a.jpg", "dog/z.jpg"], labels: [0, 1])
        #expect(throws: UsageError("checkpoint c.safetensors contains memory bank rows of other images than /data/train: the classes and image counts match, but the file names or sizes differ; do this")) {
            try restored.checkTrainingImages(other, path: "c.safetensors", advice: "do this")
        }
    }
}
