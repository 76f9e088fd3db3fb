import Foundation
import Testing
@testable import NPID

@Suite struct CIFARBinaryTests {
    @Test func cifar10ReadsRecordsInFileOrder() throws {
        let root = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(root) }
        let folder = try CIFARFixtures.writeCIFAR10(under: root)

        let train = try CIFARDataset.cifar10.load(split: .train, from: root)
        let test = try CIFARDataset.cifar10.load(split: .test, from: root)

        #expect(train.classNames == CIFARFixtures.cifar10Names)
        #expect(train.count == 10)
        #expect(train.labels == CIFARFixtures.cifar10TrainLabels.flatMap { $0.map(Int.init) })
        #expect(test.labels == [5, 3, 5])
        #expect(train.paths[3] == folder + "/data_batch_2.bin[1]")
        #expect(test.paths[2] == folder + "/test_batch.bin[2]")
        #expect(train.cachedCount == 10)
        #expect(train.imageSizes.allSatisfy { $0 == ImageSize(width: 32, height: 32) })

        // Dataset index 3 is record 1 of data_batch_2.bin: pixel (x, y) channel c is plane c at y * 32 + x.
        let image = try train[3]
        #expect(image.width == 32)
        #expect(image.height == 32)
        for (x, y) in [(0, 0), (31, 0), (5, 17), (31, 31)] {
            for channel in 0..<3 {
                let expected = CIFARFixtures.sample(file: 2, record: 1, plane: channel, position: y * 32 + x)
                #expect(image.pixels[(y * 32 + x) * 3 + channel] == expected, "pixel (\(x), \(y)) channel \(channel)")
            }
        }
    }

    @Test func cifar100UsesFineLabel() throws {
        let root = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(root) }
        let folder = root + "/cifar-100-binary"
        // Records carry (coarse, fine) label pairs; the fine label is the class.
        let trainBytes = [[4, 99], [19, 0], [0, 42]].enumerated().flatMap {
            CIFARFixtures.record(labels: $1, file: 1, record: $0)
        }
        try TestImages.write(trainBytes, to: folder + "/train.bin")
        try TestImages.write(CIFARFixtures.record(labels: [7, 12], file: 2, record: 0), to: folder + "/test.bin")
        let names = (0..<100).map { "class\($0)" }
        try TestImages.write(Array(names.joined(separator: "\n").utf8), to: folder + "/fine_label_names.txt")

        let train = try CIFARDataset.cifar100.load(split: .train, from: folder)
        let test = try CIFARDataset.cifar100.load(split: .test, from: root)

        #expect(train.labels == [99, 0, 42])
        #expect(test.labels == [12])
        #expect(train.classNames.count == 100)
        #expect(train.classNames[42] == "class42")
        let image = try train[2]
        #expect(image.pixels[0] == CIFARFixtures.sample(file: 1, record: 2, plane: 0, position: 0))
        #expect(image.pixels[3 * 33 + 2] == CIFARFixtures.sample(file: 1, record: 2, plane: 2, position: 33))
    }

    @Test func limitPerClassKeepsFirstRecords() throws {
        let root = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(root) }
        let folder = try CIFARFixtures.writeCIFAR10(under: root)

        let train = try CIFARDataset.cifar10.load(split: .train, from: root, limitPerClass: 1)

        // Labels in file order are 3 0 3 9 1 3 0 0 9 2: the first of each class are records 0, 1, 3, 4, 9.
        #expect(train.labels == [3, 0, 9, 1, 2])
        #expect(train.paths == [folder + "/data_batch_1.bin[0]", folder + "/data_batch_1.bin[1]",
                                folder + "/data_batch_2.bin[1]", folder + "/data_batch_3.bin[0]",
                                folder + "/data_batch_5.bin[1]"])
    }

    @Test func locateAcceptsBatchFolderOrParent() throws {
        let root = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(root) }
        let folder = try CIFARFixtures.writeCIFAR10(under: root)

        #expect(CIFARDataset.cifar10.locate(in: root) == folder)
        #expect(CIFARDataset.cifar10.locate(in: folder + "/") == folder)
        #expect(CIFARDataset.cifar100.locate(in: root) == nil)
    }

    @Test func missingBatchFileIsNamed() throws {
        let root = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(root) }
        let folder = try CIFARFixtures.writeCIFAR10(under: root)
        try FileManager.default.removeItem(atPath: folder + "/data_batch_4.bin")

        let expected = DataError.missingCIFARFiles(folder: folder, dataset: "CIFAR-10", missing: ["data_batch_4.bin"])
        #expect(throws: expected) {
            try CIFARDataset.cifar10.load(split: .test, from: root)
        }
        #expect(expected.description == "folder \(folder) does not contain the CIFAR-10 binary files (missing data_batch_4.bin); pass --data the folder where the official binary archive was extracted, or add --download to fetch it")
    }

    @Test func absentFolderIsNamedAsAbsent() throws {
        let root = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(root) }
        let absent = root + "/nowhere"

        let expected = DataError.missingCIFARFiles(folder: absent, dataset: "CIFAR-10", missing: [])
        #expect(throws: expected) {
            try CIFARDataset.cifar10.load(split: .train, from: absent + "/")
        }
        #expect(expected.description == "folder \(absent) does not exist; pass --data the folder where the official CIFAR-10 binary archive was extracted, or add --download to fetch it")
    }

    @Test func emptyFolderListsEveryFile() throws {
        let root = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(root) }

        #expect(throws: DataError.missingCIFARFiles(folder: root, dataset: "CIFAR-100",
                                                    missing: ["train.bin", "test.bin", "fine_label_names.txt"])) {
            try CIFARDataset.cifar100.load(split: .train, from: root)
        }
    }

    @Test func partialRecordIsRejected() throws {
        let root = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(root) }
        let folder = try CIFARFixtures.writeCIFAR10(under: root)
        let path = folder + "/test_batch.bin"
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes.removeLast(100)
        try TestImages.write(bytes, to: path)

        let expected = DataError.malformedCIFARFile(
            path: path, reason: "its size of 9119 bytes is not a whole number of 3073-byte CIFAR-10 records")
        #expect(throws: expected) {
            try CIFARDataset.cifar10.load(split: .test, from: root)
        }
        #expect(expected.description == "CIFAR file \(path) is malformed: its size of 9119 bytes is not a whole number of 3073-byte CIFAR-10 records; extract the official binary archive again or fetch it with --download")
    }

    @Test func labelOutOfRangeIsRejected() throws {
        let root = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(root) }
        let folder = try CIFARFixtures.writeCIFAR10(under: root)
        let bytes = CIFARFixtures.record(labels: [1], file: 0, record: 0) + CIFARFixtures.record(labels: [10], file: 0, record: 1)
        try TestImages.write(bytes, to: folder + "/test_batch.bin")

        #expect(throws: DataError.malformedCIFARFile(path: folder + "/test_batch.bin",
                                                     reason: "record 1 has label 10, but CIFAR-10 has 10 classes")) {
            try CIFARDataset.cifar10.load(split: .test, from: folder)
        }
    }

    @Test func wrongClassNameCountIsRejected() throws {
        let root = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(root) }
        let folder = try CIFARFixtures.writeCIFAR10(under: root)
        try TestImages.write(Array("cat\ndog\n".utf8), to: folder + "/batches.meta.txt")

        #expect(throws: DataError.malformedCIFARFile(path: folder + "/batches.meta.txt",
                                                     reason: "it names 2 classes, but CIFAR-10 has 10")) {
            try CIFARDataset.cifar10.load(split: .train, from: root)
        }
    }

    @Test func officialArchivesHavePublishedChecksums() {
        // The MD5 sums published on https://www.cs.toronto.edu/~kriz/cifar.html for the binary versions.
        #expect(CIFARDataset.cifar10.officialArchive.md5 == "c32a1d4ab5d03f1284b67883e8d87530")
        #expect(CIFARDataset.cifar100.officialArchive.md5 == "03b5dce01913d631647c71ecec9e9cb8")
        #expect(CIFARDataset.cifar10.officialArchive.url == "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz")
        #expect(CIFARDataset.cifar100.officialArchive.url == "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz")
        #expect(CIFARDataset.cifar10.requiredFiles == ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                                        "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin",
                                                        "batches.meta.txt"])
    }
}
