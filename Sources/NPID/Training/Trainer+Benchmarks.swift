import Foundation
import Torch

extension Trainer {
    /// Times `steps` training steps of the network, loss, optimizer and memory bank alone:
    /// every step takes one of a few prepared batches of random pixels, so neither image
    /// decoding nor augmentation is timed. The copy of the batch into a tensor (and to the
    /// GPU) is timed, because a real step pays for it too. Changes the model and the bank,
    /// and writes nothing.
    public func measureSyntheticThroughput(steps: Int, warmup: Int = 2) throws -> Throughput {
        let batches = syntheticBatches(count: 4)
        let parameters = model.parameters
        var images = 0
        var start = Date()
        for done in 0..<(warmup + steps) {
            if done == warmup {
                try Torch.synchronize(runtime.device)
                start = Date()
            }
            let batch = batches[done % batches.count]
            _ = try trainStep(batch, learningRate: configuration.learningRate, parameters: parameters)
            if done >= warmup {
                images += batch.count
            }
        }
        try Torch.synchronize(runtime.device)
        return Throughput(steps: steps, images: images, seconds: Date().timeIntervalSince(start))
    }

    /// Full batches of uniform random pixels with distinct dataset indices, so that each
    /// step updates `batchSize` different memory-bank rows as a real step does.
    func syntheticBatches(count: Int) -> [Batch] {
        let size = configuration.imageSize
        let batchSize = min(configuration.batchSize, data.train.count)
        let layout: PixelLayout = runtime.channelsLast ? .nhwc : .nchw
        var random = SampleRandom(seed: configuration.seed)
        return (0..<count).map { _ in
            let pixels = (0..<(batchSize * 3 * size * size)).map { _ in Float(random.nextUniform()) }
            let indices = Array((0..<data.train.count).shuffled(using: &random).prefix(batchSize))
            let labels = indices.map { data.train.labels[$0] }
            return Batch(pixels: pixels, indices: indices, labels: labels, imageSize: size, layout: layout)
        }
    }
}

/// Timed training steps: how many, the images they took and the seconds they ran.
public struct Throughput: Sendable {
    public var steps: Int
    /// Images in the timed steps, which is less than steps times the batch size when a batch
    /// is short (the end of an epoch, or a batch larger than the training split).
    public var images: Int
    public var seconds: Double

    public var imagesPerSecond: Double { Double(images) / seconds }
    public var millisecondsPerStep: Double { 1000 * seconds / Double(steps) }
}

/// The time of one weighted-kNN evaluation, in its two parts.
public struct TimedEvaluation: Sendable {
    public var accuracy: KNNAccuracy
    /// Reading, transforming and forwarding the test images.
    public var featureSeconds: Double
    /// Similarities against the memory bank, top-k and the weighted vote.
    public var knnSeconds: Double
}

extension Trainer {
    /// Runs the memory-bank kNN evaluation that ends every epoch and times its parts.
    public func timeEvaluation() throws -> TimedEvaluation {
        let started = Date()
        let (queries, reference) = try evaluationFeatures(recompute: false)
        try Torch.synchronize(runtime.device)
        let featuresDone = Date()
        let knn = WeightedKNN(neighborCount: configuration.neighborCount, temperature: configuration.temperature)
        let accuracy = try knn.evaluate(queries: queries, queryLabels: data.test.labels, bank: reference,
                                        bankLabels: trainLabels, classCount: data.classNames.count)
        try Torch.synchronize(runtime.device)
        return TimedEvaluation(accuracy: accuracy, featureSeconds: featuresDone.timeIntervalSince(started),
                               knnSeconds: Date().timeIntervalSince(featuresDone))
    }
}
