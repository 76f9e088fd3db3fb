import Foundation
@testable import NPID
import Torch

/// Tiny in-memory training runs for the tests of the method's traps: 8×8 images, a ResNet-18
/// of width 4 and 8-d features, on the CPU, one loader thread.
enum TinyRun {
    static let imageSize = 8

    /// Returns `count` distinct noise images labelled by index modulo `classCount`.
    static func store(count: Int, classCount: Int = 2, seed: UInt64 = 0) -> ImageStore {
        let images = (0..<count).map { TestImages.noise(width: imageSize, height: imageSize, seed: seed + UInt64($0)) }
        return ImageStore(images: images, labels: (0..<count).map { $0 % classCount },
                          classNames: (0..<classCount).map { "class\($0)" })
    }

    static func data(trainCount: Int, testCount: Int = 4, classCount: Int = 2) -> TrainingData {
        TrainingData(train: store(count: trainCount, classCount: classCount),
                     test: store(count: testCount, classCount: classCount, seed: 1000))
    }

    /// Returns a small valid configuration (batch 4, K = 3, two epochs, seed 7) after `change`.
    static func configuration(_ change: (inout TrainingConfiguration) -> Void = { _ in }) -> TrainingConfiguration {
        var configuration = TrainingConfiguration()
        configuration.model = ModelConfiguration(architecture: .resnet18, stem: .cifar, width: 4, featureDimension: 8)
        configuration.imageSize = imageSize
        configuration.batchSize = 4
        configuration.negativeCount = 3
        configuration.neighborCount = 3
        configuration.epochs = 2
        configuration.seed = 7
        change(&configuration)
        return configuration
    }

    /// CPU, NCHW, float32, batches built on the calling thread. The precision is fixed
    /// because the tests compare the network's output with float32 computations, and the
    /// default would be bfloat16 on CPUs with bfloat16 units.
    static var runtime: RuntimeOptions {
        var runtime = RuntimeOptions()
        runtime.workers = 0
        runtime.channelsLast = false
        runtime.precision = .float32
        return runtime
    }

    /// Builds the shuffled training loader that `Trainer.run` builds for this trainer.
    static func trainLoader(_ trainer: Trainer) -> BatchLoader {
        BatchLoader(store: trainer.data.train, transform: .train(TrainAugmentation(outputSize: imageSize)),
                    batchSize: trainer.configuration.batchSize, shuffle: true, seed: trainer.configuration.seed,
                    workers: 0, layout: .nchw)
    }

    /// Trains one epoch and returns the loss of every step.
    static func trainEpoch(_ trainer: Trainer) throws -> [Double] {
        var losses: [Double] = []
        _ = try trainer.trainEpoch(loader: trainLoader(trainer), shouldStop: { false }) { event in
            if case .step(let progress) = event {
                losses.append(progress.loss)
            }
        }
        // Trainer.run saves after recording the epoch's metrics; this helper has no metrics log.
        try trainer.saveCheckpoint(events: { _ in })
        return losses
    }

    /// Builds [B, 3, S, S] for `indices` as the loader should, but image by image from the dataset
    /// index alone, with the augmentation randomness of `SampleRandom.forSample(seed:epoch:index:)`.
    static func augmentedImages(_ indices: [Int], store: ImageStore, seed: UInt64, epoch: Int) throws -> Tensor {
        let augmentation = TrainAugmentation(outputSize: imageSize)
        let length = 3 * imageSize * imageSize
        var pixels = [Float](repeating: 0, count: indices.count * length)
        try pixels.withUnsafeMutableBufferPointer { buffer in
            for (position, index) in indices.enumerated() {
                var random = SampleRandom.forSample(seed: seed, epoch: epoch, index: index)
                augmentation.apply(try store[index], random: &random, into: buffer.baseAddress! + position * length,
                                   layout: .nchw)
            }
        }
        return try Tensor(pixels, shape: [indices.count, 3, imageSize, imageSize])
    }

    /// Converts one image into [1, 3, S, S] of byte / 255, the plain transform of an S×S image.
    static func plainImage(_ image: RGBImage) throws -> Tensor {
        var values: [Float] = []
        for channel in 0..<3 {
            for y in 0..<image.height {
                for x in 0..<image.width {
                    values.append(Float(image.pixels[(y * image.width + x) * 3 + channel]) / 255)
                }
            }
        }
        return try Tensor(values, shape: [1, 3, image.height, image.width])
    }

    /// Returns the L2 norm of every row of a [N, D] tensor.
    static func rowNorms(_ rows: Tensor) throws -> [Double] {
        try MethodTensors.values(rows.to(dtype: .float64).norm(dims: [1]))
    }
}
