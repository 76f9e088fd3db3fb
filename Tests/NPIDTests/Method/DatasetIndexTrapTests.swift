import Foundation
import Testing
@testable import NPID
import Torch

/// Bank row i must belong to the image with dataset index i whatever order the loader
/// yields, however small the last batch is and whichever files `--limit-per-class` left out,
/// and evaluation must compare rows in dataset order.
@Suite struct DatasetIndexTrapTests {
    /// File names per class, written in this order; sorted byte-wise they are img0, img1, img10, img2, img3.
    static let fileNames = ["img3.png", "img10.png", "img0.png", "img2.png", "img1.png"]
    /// Class folders, written in this order; sorted they are ant, bee, cat.
    static let classNames = ["cat", "ant", "bee"]
    static let limitPerClass = 3

    /// Returns the image written to `split/className/fileName`, distinct for every file.
    static func image(split: String, className: String, fileName: String) -> RGBImage {
        var hasher = 14_695_981_039_346_656_037 as UInt64
        for byte in (split + "/" + className + "/" + fileName).utf8 {
            hasher = (hasher ^ UInt64(byte)) &* 1_099_511_628_211
        }
        return TestImages.noise(width: TinyRun.imageSize, height: TinyRun.imageSize, seed: hasher)
    }

    /// Writes train/ (five PNG files per class) and test/ (one per class) under `root`.
    static func writeFolder(at root: String) throws {
        for className in classNames {
            for (split, names) in [("train", fileNames), ("test", ["only.png"])] {
                let folder = root + "/" + split + "/" + className
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                for name in names {
                    try PNGEncoder.write(image(split: split, className: className, fileName: name), to: folder + "/" + name)
                }
            }
        }
    }

    @Test func bankRowsFollowDatasetIndex() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        try Self.writeFolder(at: folder.path + "/data")
        let data = try TrainingData.load(root: folder.path + "/data", limitPerClass: Self.limitPerClass,
                                         testLimitPerClass: nil, threads: 1)

        // Dataset index i is the i-th kept file: classes by name, files by name, the first three of each.
        let kept = ["img0.png", "img1.png", "img10.png"]
        let expectedFiles = ["ant", "bee", "cat"].flatMap { className in kept.map { (className, $0) } }
        #expect(data.train.count == expectedFiles.count)
        for (index, (className, fileName)) in expectedFiles.enumerated() {
            #expect(data.train.paths[index].hasSuffix("/train/\(className)/\(fileName)"), "path \(index): \(data.train.paths[index])")
            #expect(try data.train[index] == Self.image(split: "train", className: className, fileName: fileName),
                    "image \(index) is not \(className)/\(fileName)")
        }

        // With m = 0 an updated row is exactly the feature of the image that the row names.
        let configuration = TinyRun.configuration { $0.bankMomentum = 0 }
        let trainer = try Trainer(configuration: configuration, runtime: TinyRun.runtime, data: data,
                                  runDirectory: folder.path + "/run")
        let loader = TinyRun.trainLoader(trainer)
        try #require(loader.order(epoch: 0) != Array(0..<data.train.count), "the loader should shuffle")
        let batches = Array(loader.epoch(0))
        #expect(batches.map(\.count) == [4, 4, 1])

        for batch in batches {
            let images = try TinyRun.augmentedImages(batch.indices, store: data.train, seed: configuration.seed, epoch: 0)
            let expected = try MethodTensors.values(withNoGrad { try trainer.network(images, training: true) })
            let before = try MethodTensors.values(trainer.memoryBank.features)

            _ = try trainer.trainStep(batch, learningRate: configuration.learningRate, parameters: trainer.network.parameters)

            let after = try MethodTensors.values(trainer.memoryBank.features)
            let dimension = configuration.model.featureDimension
            for (position, index) in batch.indices.enumerated() {
                let row = MethodReference.row(after, index, columns: dimension)
                let feature = MethodReference.row(expected, position, columns: dimension)
                for j in 0..<dimension {
                    #expect(abs(row[j] - feature[j]) <= 1e-5, "row \(index) column \(j): \(row[j]), feature \(feature[j])")
                }
            }
            for index in 0..<data.train.count where !batch.indices.contains(index) {
                #expect(MethodReference.row(after, index, columns: dimension) == MethodReference.row(before, index, columns: dimension),
                        "row \(index) changed although image \(index) is not in the batch")
            }
        }
    }

    @Test(arguments: [false, true])
    func evaluationRowsFollowDatasetOrder(recompute: Bool) throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let data = TinyRun.data(trainCount: 6, testCount: 5)
        let trainer = try Trainer(configuration: TinyRun.configuration(), runtime: TinyRun.runtime, data: data,
                                  runDirectory: folder.path)
        for batch in TinyRun.trainLoader(trainer).epoch(0) {
            _ = try trainer.trainStep(batch, learningRate: 0.03, parameters: trainer.network.parameters)
        }

        let (queries, reference) = try trainer.evaluationFeatures(recompute: recompute)

        // Evaluation mode makes a feature independent of the batch, so each image can run alone.
        func soloFeature(_ image: RGBImage) throws -> [Double] {
            try MethodTensors.values(withNoGrad { try trainer.network(TinyRun.plainImage(image), training: false) })
        }
        let dimension = 8
        let queryValues = try MethodTensors.values(queries)
        for index in 0..<data.test.count {
            let expected = try soloFeature(data.test[index])
            let actual = MethodReference.row(queryValues, index, columns: dimension)
            for j in 0..<dimension {
                #expect(abs(actual[j] - expected[j]) <= 1e-5, "test image \(index) column \(j)")
            }
        }
        let referenceValues = try MethodTensors.values(reference)
        let bankValues = try MethodTensors.values(trainer.memoryBank.features)
        for index in 0..<data.train.count {
            let expected = recompute ? try soloFeature(data.train[index]) : MethodReference.row(bankValues, index, columns: dimension)
            let actual = MethodReference.row(referenceValues, index, columns: dimension)
            for j in 0..<dimension {
                #expect(abs(actual[j] - expected[j]) <= 1e-5, "training image \(index) column \(j)")
            }
        }
    }
}
