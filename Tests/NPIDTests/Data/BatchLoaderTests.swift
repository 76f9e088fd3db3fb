import Foundation
import Testing
@testable import NPID

@Suite struct BatchLoaderTests {
    /// Makes a store of `count` distinct noise images with labels index % 3.
    private func makeStore(count: Int, size: Int = 32) -> ImageStore {
        let images = (0..<count).map { TestImages.noise(width: size, height: size, seed: UInt64($0)) }
        return ImageStore(images: images, labels: (0..<count).map { $0 % 3 }, classNames: ["a", "b", "c"])
    }

    private func makeLoader(_ store: ImageStore, batchSize: Int = 7, shuffle: Bool = true, seed: UInt64 = 3,
                            workers: Int = 2, prefetch: Int = 4, layout: PixelLayout = .nchw,
                            transform: ImageTransform = .train(TrainAugmentation())) -> BatchLoader {
        BatchLoader(store: store, transform: transform, batchSize: batchSize, shuffle: shuffle, seed: seed,
                    workers: workers, prefetch: prefetch, layout: layout)
    }

    @Test func epochVisitsEveryIndexOnce() {
        let store = makeStore(count: 23)
        let loader = makeLoader(store)
        #expect(loader.batchCount == 4)

        let batches = Array(loader.epoch(0))

        #expect(batches.map(\.count) == [7, 7, 7, 2])
        #expect(batches.flatMap(\.indices).sorted() == Array(0..<23))
        for batch in batches {
            #expect(batch.labels == batch.indices.map { store.labels[$0] })
            #expect(batch.pixels.count == batch.count * 3 * 32 * 32)
            #expect(batch.imageSize == 32)
            #expect(batch.layout == .nchw)
        }
    }

    @Test func epochsShuffleDifferently() {
        let store = makeStore(count: 23)
        let loader = makeLoader(store)
        let first = loader.epoch(0).flatMap(\.indices)
        let second = loader.epoch(1).flatMap(\.indices)

        #expect(first != second)
        #expect(first == loader.order(epoch: 0))
        #expect(first == makeLoader(store, workers: 0).epoch(0).flatMap(\.indices))
        #expect(first != makeLoader(store, seed: 4).epoch(0).flatMap(\.indices))
    }

    @Test func unshuffledEpochKeepsDatasetOrder() {
        let loader = makeLoader(makeStore(count: 23), shuffle: false)
        #expect(loader.epoch(0).flatMap(\.indices) == Array(0..<23))
        #expect(loader.epoch(5).flatMap(\.indices) == Array(0..<23))
    }

    @Test func workerCountsGiveIdenticalBatches() {
        let store = makeStore(count: 23)
        let reference = Array(makeLoader(store, workers: 0).epoch(2))
        for (workers, prefetch) in [(1, 4), (2, 4), (2, 1), (5, 2)] {
            let batches = Array(makeLoader(store, workers: workers, prefetch: prefetch).epoch(2))
            #expect(batches.count == reference.count)
            for (batch, expected) in zip(batches, reference) {
                #expect(batch.indices == expected.indices)
                #expect(batch.pixels == expected.pixels, "workers \(workers), prefetch \(prefetch)")
            }
        }
    }

    @Test func batchPixelsMatchSingleImageTransform() throws {
        let store = makeStore(count: 5)
        let augmentation = TrainAugmentation()
        let loader = makeLoader(store, batchSize: 5, seed: 9, layout: .nhwc, transform: .train(augmentation))
        let batch = loader.epoch(1).next()!

        for (position, index) in batch.indices.enumerated() {
            let image = try store[index]
            var expected = [Float](repeating: 0, count: 3072)
            expected.withUnsafeMutableBufferPointer { output in
                var random = SampleRandom.forSample(seed: 9, epoch: 1, index: index)
                augmentation.apply(image, random: &random, into: output.baseAddress!, layout: .nhwc)
            }
            let start = position * 3072
            let actual = Array(batch.pixels[start..<(start + 3072)])
            #expect(actual == expected)
        }
    }

    @Test func plainTransformBatchIsExact() throws {
        let store = makeStore(count: 4)
        let loader = makeLoader(store, batchSize: 4, shuffle: false, layout: .nhwc,
                                transform: .plain(PlainTransform(outputSize: 32)))
        let batch = loader.epoch(0).next()!
        let expected = try (0..<4).flatMap { try store[$0].pixels.map { Float($0) / 255 } }
        #expect(batch.pixels == expected)
    }

    @Test func abandonedEpochStopsWorkersPromptly() {
        let store = makeStore(count: 800)
        let loader = makeLoader(store, batchSize: 16, workers: 2, prefetch: 2)
        let start = Date()
        do {
            let epoch = loader.epoch(0)
            for _ in 0..<3 {
                _ = epoch.next()
            }
        }
        let elapsed = Date().timeIntervalSince(start)

        #expect(elapsed < 2)
        #expect(loader.liveWorkerCount == 0)
    }

    @Test func cancelEndsEpochAndJoinsWorkers() {
        let loader = makeLoader(makeStore(count: 500), batchSize: 10, workers: 2)
        let epoch = loader.epoch(0)
        #expect(epoch.next() != nil)

        epoch.cancel()

        #expect(loader.liveWorkerCount == 0)
        #expect(epoch.next() == nil)
        epoch.cancel()
    }

    @Test func finishedEpochLeavesNoThreads() {
        let loader = makeLoader(makeStore(count: 23), workers: 3)
        do {
            var count = 0
            for batch in loader.epoch(0) {
                count += batch.count
            }
            #expect(count == 23)
        }
        #expect(loader.liveWorkerCount == 0)
    }

    @Test func synchronousLoaderNeedsNoThreads() {
        let loader = makeLoader(makeStore(count: 23), workers: 0)
        let epoch = loader.epoch(0)
        _ = epoch.next()
        #expect(loader.liveWorkerCount == 0)
        #expect(Array(epoch).count == 3)
    }
}
