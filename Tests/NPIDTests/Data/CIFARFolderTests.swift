import Foundation
import Testing
@testable import NPID

/// Checks against the real CIFAR-10 JPEG folders; skipped, with the reason printed, when they are missing.
@Suite struct CIFARFolderTests {
    static let cifarClasses = ["airplane", "automobile", "bird", "cat", "deer",
                               "dog", "frog", "horse", "ship", "truck"]

    @Test func realCIFARDecodesAndLoads() throws {
        guard let root = TestImages.cifarRoot() else {
            print("skipping realCIFARDecodesAndLoads: set NPID_DATA to a folder with CIFAR-10 train/ and test/")
            return
        }

        let folder = try ImageFolder(split: root + "/test", limitPerClass: 30)
        #expect(folder.classNames == Self.cifarClasses)
        #expect(folder.count == 300)
        #expect(folder.labels == Self.cifarClasses.indices.flatMap { Array(repeating: $0, count: 30) })

        let store = try ImageStore(folder: folder, threads: 2)
        let images = try (0..<store.count).map { try store[$0] }
        #expect(images.allSatisfy { $0.width == 32 })
        #expect(images.allSatisfy { $0.height == 32 })
        // Real photographs are not flat: every image has some spread of values.
        #expect(images.allSatisfy { Set($0.pixels).count > 8 })

        let loader = BatchLoader(store: store, transform: .train(TrainAugmentation()), batchSize: 64,
                                 shuffle: true, seed: 1, workers: 2)
        let batches = Array(loader.epoch(0))
        #expect(batches.map(\.count) == [64, 64, 64, 64, 44])
        #expect(batches.flatMap(\.indices).sorted() == Array(0..<300))
        #expect(batches.allSatisfy { $0.pixels.min()! >= 0 })
        #expect(batches.allSatisfy { $0.pixels.max()! <= 1 })
    }
}
