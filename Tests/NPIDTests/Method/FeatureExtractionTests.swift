import Foundation
import Testing
@testable import NPID
import Torch

/// `extractFeatures` places each image's feature at its dataset index, whatever order the
/// loader yields and however small the last batch is.
@Suite struct FeatureExtractionTests {
    static let imageCount = 7
    static let size = 8

    /// Builds a store of distinct 8×8 images whose bytes follow a fixed formula.
    static func makeStore() -> ImageStore {
        let images = (0..<imageCount).map { i in
            let pixels = (0..<(size * size * 3)).map { p in
                UInt8((p * (2 * i + 3) + 17 * i * i) % 256)
            }
            return RGBImage(width: size, height: size, pixels: pixels)
        }
        return ImageStore(images: images, labels: (0..<imageCount).map { $0 % 2 }, classNames: ["even", "odd"])
    }

    /// Converts image `index` into a [1, 3, S, S] tensor of byte / 255 without the data pipeline.
    static func imageTensor(_ store: ImageStore, _ index: Int) throws -> Tensor {
        let image = try store[index]
        var values: [Float] = []
        for c in 0..<3 {
            for y in 0..<size {
                for x in 0..<size {
                    values.append(Float(image.pixels[(y * size + x) * 3 + c]) / 255)
                }
            }
        }
        return try Tensor(values, shape: [1, 3, size, size])
    }

    @Test(arguments: [true, false])
    func rowsFollowDatasetIndex(channelsLast: Bool) throws {
        let store = Self.makeStore()
        let model = try ResNet(ModelConfiguration(architecture: .resnet18, stem: .cifar, width: 4, featureDimension: 6))
        // A training-mode pass gives the batch-norm layers non-trivial running statistics.
        _ = try model(MethodTensors.float(MethodReference.waves(count: 4 * 3 * 64, phase: 0.1), shape: [4, 3, 8, 8]),
                      training: true)
        let loader = BatchLoader(store: store, transform: .plain(PlainTransform(outputSize: Self.size)), batchSize: 3,
                                 shuffle: true, seed: 5, workers: 1, layout: channelsLast ? .nhwc : .nchw)
        try #require(loader.order(epoch: 0) != Array(0..<Self.imageCount), "the loader should visit images out of order")

        let features = try extractFeatures(model: model, loader: loader, count: Self.imageCount, device: .cpu,
                                           channelsLast: channelsLast)

        #expect(features.shape == [Self.imageCount, 6])
        let rows = try MethodTensors.values(features)
        for index in 0..<Self.imageCount {
            let expected = try MethodTensors.values(withNoGrad { try model(Self.imageTensor(store, index), training: false) })
            let actual = MethodReference.row(rows, index, columns: 6)
            for j in 0..<6 {
                #expect(abs(actual[j] - expected[j]) <= 1e-5, "image \(index) column \(j): \(actual[j]), expected \(expected[j])")
            }
        }
    }
}
