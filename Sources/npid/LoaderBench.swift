import Foundation
import NPID
import Torch

/// `npid bench --loader`: images/s of the batch loader alone, printed as one JSON object.
enum LoaderBench {
    static let defaults = TrainingConfiguration.defaults
    static let defaultBatches = 50

    static let specs: [OptionSpec] = DataOptions.specs + [
        OptionSpec("--batches", value: "N", help: "batches to time, after one untimed warm-up batch (default \(defaultBatches))"),
        OptionSpec("-b", "--batch-size", value: "B", help: "images per batch (default \(defaults.batchSize))"),
        OptionSpec("--image-size", value: "S", help: "side of the augmented images in pixels (default: as npid train chooses from the images)"),
        OptionSpec("--limit-per-class", value: "N", help: "use the first N training images of each class (default all)"),
        OptionSpec("--workers", value: "N", help: "loader threads (default: as npid train on --device cpu, 1)"),
        OptionSpec("--seed", value: "S", help: "seed of the shuffle and the augmentation (default \(defaults.seed))"),
    ]

    static func run(_ arguments: [String]) throws {
        let options = try ParsedOptions(arguments, specs: specs, command: "bench --loader")
        let batches = try options.int("--batches") ?? defaultBatches
        guard batches >= 1 else { throw UsageError("--batches must be at least 1, got \(batches)") }
        let batchSize = try options.int("--batch-size") ?? defaults.batchSize
        guard batchSize >= 1 else { throw UsageError("--batch-size must be at least 1, got \(batchSize)") }
        let limitPerClass = try options.int("--limit-per-class")
        if let limitPerClass, limitPerClass < 1 {
            throw UsageError("--limit-per-class must be at least 1, got \(limitPerClass)")
        }
        let requestedSize = try options.int("--image-size")
        if let requestedSize, requestedSize < 8 {
            throw UsageError("--image-size must be at least 8 pixels, got \(requestedSize)")
        }
        if let requestedSize {
            try requireBatchFitsMemory(imageSize: requestedSize, batchSize: batchSize)
        }
        let workers = try options.int("--workers")
            ?? ThreadPlan.defaults(device: .cpu, coreCount: ProcessInfo.processInfo.activeProcessorCount).workers
        guard workers >= 0 else { throw UsageError("--workers must be 0 or more, got \(workers)") }
        var seed = defaults.seed
        if let text = options.string("--seed") {
            guard let value = UInt64(text) else {
                throw UsageError("--seed expects a whole number from 0 to \(UInt64.max), got '\(text)'")
            }
            seed = value
        }
        let request = try DataOptions.request(options, command: "bench")

        let data = try DataOptions.load(request, limitPerClass: limitPerClass, testLimitPerClass: 1)
        let imageSize = requestedSize ?? TrainingConfiguration.defaultImageSize(for: data.train.imageSizes)
        let loader = BatchLoader(store: data.train, transform: .train(TrainAugmentation(outputSize: imageSize)),
                                 batchSize: batchSize, shuffle: true, seed: seed, workers: workers, layout: .nhwc)
        let measurement = try measure(loader, batches: batches)

        let fields: [String] = [
            #""event": "bench""#,
            #""mode": "loader""#,
            String(format: #""images_per_s": %.1f"#, Double(measurement.images) / measurement.seconds),
            #""images": \#(measurement.images)"#,
            String(format: #""seconds": %.3f"#, measurement.seconds),
            #""batches": \#(batches)"#,
            #""batch_size": \#(batchSize)"#,
            #""image_size": \#(imageSize)"#,
            #""workers": \#(workers)"#,
            #""training_images": \#(data.train.count)"#,
            #""cached_images": \#(data.train.cachedCount)"#,
        ]
        Console.output("{" + fields.joined(separator: ", ") + "}")
    }

    /// Takes one untimed warm-up batch, then times `batches` batches, continuing into later epochs
    /// when one epoch has fewer.
    static func measure(_ loader: BatchLoader, batches: Int) throws -> (images: Int, seconds: Double) {
        var received = 0
        var images = 0
        var start = Date()
        var epoch = 0
        while received < batches + 1 {
            let epochBatches = loader.epoch(epoch)
            while received < batches + 1, let batch = try epochBatches.nextBatch() {
                if received == 0 {
                    start = Date()
                } else {
                    images += batch.count
                }
                received += 1
            }
            epochBatches.cancel()
            epoch += 1
        }
        return (images, Date().timeIntervalSince(start))
    }
}
