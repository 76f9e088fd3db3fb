import Foundation
import NPID
import Torch

/// `npid bench --train` and `npid bench --eval`: training images/s (with the loader, or
/// with synthetic batches to see the network alone) and the time of one kNN evaluation,
/// each printed as one JSON object with the peak memory.
enum TrainBench {
    static let defaults = TrainingConfiguration.defaults
    static let defaultSteps = 20
    static let defaultSyntheticRows = 50_000

    /// The settings that change what one training step computes.
    static let networkSpecs: [OptionSpec] = [
        OptionSpec("--arch", value: "NAME", help: "resnet18, resnet34 or resnet50 (default \(defaults.model.architecture.rawValue))"),
        OptionSpec("--width", value: "W", help: "channels of the first stage (default \(defaults.model.width))"),
        OptionSpec("--low-dim", value: "D", help: "feature dimension (default \(defaults.model.featureDimension))"),
        OptionSpec("--image-size", value: "S", help: "side of the network input in pixels (default: as npid train chooses)"),
        OptionSpec("--stem", value: "NAME", help: "cifar or imagenet (default: as npid train chooses)"),
        OptionSpec("--limit-per-class", value: "N", help: "use the first N training images of each class (default all)"),
        OptionSpec("--seed", value: "S", help: "seed of the weights, bank, noise and data order (default \(defaults.seed))"),
    ] + networkRuntimeSpecs

    static let trainSpecs: [OptionSpec] = DataOptions.specs + networkSpecs + [
        OptionSpec("-b", "--batch-size", value: "B", help: "images per step (default \(defaults.batchSize))"),
        OptionSpec("--nce-k", value: "K", help: "noise rows per sample; 0 for the full softmax (default \(defaults.negativeCount))"),
        OptionSpec("--loss", value: "NAME", help: "nce or softmax-ce (default \(defaults.loss.rawValue))"),
        OptionSpec("--steps", value: "N", help: "steps to time, after 2 untimed warm-up steps (default \(defaultSteps))"),
        OptionSpec("--synthetic", help: "random pixels instead of --data: times the network, loss, optimizer and bank alone"),
        OptionSpec("--bank", value: "N", help: "memory-bank rows with --synthetic (default \(defaultSyntheticRows))"),
    ]

    static let evalSpecs: [OptionSpec] = DataOptions.specs + networkSpecs + [
        OptionSpec("--test-limit-per-class", value: "N", help: "test images per class (default N/5 with --limit-per-class, else all)"),
        OptionSpec("--knn-k", value: "K", help: "neighbours of the vote (default \(defaults.neighborCount))"),
        OptionSpec("--knn-t", value: "T", help: "temperature σ of the vote (default \(defaults.temperature))"),
    ]

    static func runTrain(_ arguments: [String]) throws {
        let options = try ParsedOptions(arguments, specs: trainSpecs, command: "bench --train")
        let steps = try KNNBench.positive(options, "--steps", default: defaultSteps)
        let synthetic = options.has("--synthetic")
        if synthetic && options.has("--data") {
            throw UsageError("--synthetic replaces --data with random pixels; drop one of them")
        }
        if !synthetic && options.has("--bank") {
            throw UsageError("--bank sets the memory-bank rows of --synthetic; add --synthetic or drop --bank")
        }
        let syntheticRows = try KNNBench.positive(options, "--bank", default: defaultSyntheticRows)
        let batchSize = try options.int("--batch-size") ?? defaults.batchSize
        if synthetic && syntheticRows < batchSize {
            // A synthetic batch takes distinct bank rows, so it could not be full.
            throw UsageError("--bank \(syntheticRows) is smaller than the batch of \(batchSize) images; raise --bank to at least \(batchSize) or lower -b")
        }
        let setup = try prepare(options, synthetic: synthetic, syntheticRows: syntheticRows)

        let measured = synthetic
            ? try setup.trainer.measureSyntheticThroughput(steps: steps)
            : try setup.trainer.measureThroughput(steps: steps)
        let configuration = setup.trainer.configuration
        var fields = commonFields(setup, mode: "train")
        fields += [
            ("input", synthetic ? "\"synthetic\"" : "\"loader\""),
            ("batch_size", "\(configuration.batchSize)"),
            ("nce_k", "\(configuration.negativeCount)"),
            ("loss", "\"\(configuration.loss.rawValue)\""),
            ("steps", "\(steps)"),
            ("images", "\(measured.images)"),
            ("images_per_s", String(format: "%.2f", measured.imagesPerSecond)),
            ("step_ms", String(format: "%.1f", measured.millisecondsPerStep)),
        ]
        output(fields + (try memoryFields(setup.trainer.runtime.device)))
    }

    static func runEval(_ arguments: [String]) throws {
        let options = try ParsedOptions(arguments, specs: evalSpecs, command: "bench --eval")
        let setup = try prepare(options, synthetic: false, syntheticRows: 0)

        let timed = try setup.trainer.timeEvaluation()
        let configuration = setup.trainer.configuration
        var fields = commonFields(setup, mode: "eval")
        fields += [
            ("queries", "\(setup.trainer.data.test.count)"),
            ("knn_k", "\(configuration.neighborCount)"),
            ("seconds", String(format: "%.3f", timed.featureSeconds + timed.knnSeconds)),
            ("feature_seconds", String(format: "%.3f", timed.featureSeconds)),
            ("knn_seconds", String(format: "%.3f", timed.knnSeconds)),
            ("top1", String(format: "%.2f", timed.accuracy.top1)),
        ]
        output(fields + (try memoryFields(setup.trainer.runtime.device)))
    }

    /// An untrained run ready to time, and the seconds its images took to read.
    struct Setup {
        var trainer: Trainer
        var decodeSeconds: Double
    }

    /// Builds an untrained run: the network, a random memory bank the size of the training
    /// split and the optimizer state, as `npid train` has them before its first step.
    static func prepare(_ options: ParsedOptions, synthetic: Bool, syntheticRows: Int) throws -> Setup {
        var configuration = defaults
        try TrainCommand.apply(options, to: &configuration)
        // bench --eval names the vote's temperature as npid eval does; its run has no training τ.
        if let temperature = try knnTemperatureOption(options) {
            configuration.temperature = temperature
        }
        if configuration.limitPerClass != nil && configuration.testLimitPerClass == nil {
            configuration.testLimitPerClass = max(1, configuration.limitPerClass! / 5)
        }
        try configuration.validate()
        try requireBatchFitsMemory(imageSize: configuration.imageSize, batchSize: configuration.batchSize)
        let runtime = try runtimeOptions(options)

        if synthetic {
            // The bank is allocated in full; past the machine's memory the allocation would fail
            // somewhere inside libtorch or Swift instead of with this message.
            try requireFitsMemory(bytes: Double(syntheticRows) * Double(configuration.model.featureDimension) * 4,
                                  request: "--bank \(syntheticRows)", use: "the memory bank alone",
                                  advice: "choose a smaller --bank")
        }

        let started = Date()
        let data: TrainingData
        if synthetic {
            data = syntheticData(rows: syntheticRows, imageSize: configuration.imageSize)
        } else {
            let request = try DataOptions.request(options, command: "bench")
            data = try DataOptions.load(request, limitPerClass: configuration.limitPerClass,
                                        testLimitPerClass: configuration.testLimitPerClass)
        }
        let decodeSeconds = Date().timeIntervalSince(started)
        TrainCommand.chooseInputDefaults(&configuration, for: data, options: options)

        let scratch = NSTemporaryDirectory() + "npid-bench-unused"
        let trainer = try Trainer(configuration: configuration, runtime: runtime, data: data, runDirectory: scratch)
        if case .cuda(let index) = runtime.device {
            try Torch.resetCUDAMemoryPeaks(index: index)
        }
        return Setup(trainer: trainer, decodeSeconds: decodeSeconds)
    }

    /// `rows` training images and ten test images of ten classes. All images share one
    /// pixel buffer, so the store costs one image of memory whatever `rows` is.
    static func syntheticData(rows: Int, imageSize: Int) -> TrainingData {
        let image = RGBImage(width: imageSize, height: imageSize, pixels: [UInt8](repeating: 128, count: imageSize * imageSize * 3))
        let classNames = (0..<10).map { "class\($0)" }
        func store(_ count: Int) -> ImageStore {
            ImageStore(images: Array(repeating: image, count: count), labels: (0..<count).map { $0 % 10 },
                       classNames: classNames)
        }
        return TrainingData(train: store(rows), test: store(10))
    }

    static func commonFields(_ setup: Setup, mode: String) -> [(String, String)] {
        let configuration = setup.trainer.configuration
        let runtime = setup.trainer.runtime
        return [
            ("event", "\"bench\""), ("mode", "\"\(mode)\""),
            ("arch", "\"\(configuration.model.architecture.rawValue)\""),
            ("width", "\(configuration.model.width)"),
            ("image_size", "\(configuration.imageSize)"),
            ("train_images", "\(setup.trainer.data.train.count)"),
            ("device", "\"\(runtime.device)\""),
            ("precision", "\"\(runtime.effectivePrecision.rawValue)\""),
            ("channels_last", runtime.channelsLast ? "true" : "false"),
            ("threads", "\(Torch.threadCount)"),
            ("workers", "\(runtime.workers)"),
            ("decode_seconds", String(format: "%.2f", setup.decodeSeconds)),
        ]
    }

    /// Peak resident memory of the process (decoded images, bank, network, libtorch), and on
    /// a GPU the peaks of libtorch's caching allocator since the run was set up.
    static func memoryFields(_ device: Device) throws -> [(String, String)] {
        var fields = [("peak_rss_mb", KNNBench.megabytes(ProcessMemory.kilobytes("VmHWM")))]
        if case .cuda(let index) = device {
            let peaks = try Torch.cudaMemoryPeaks(index: index)
            fields.append(("gpu_peak_allocated_mb", String(format: "%.1f", Double(peaks.allocated) / 1_048_576)))
            fields.append(("gpu_peak_reserved_mb", String(format: "%.1f", Double(peaks.reserved) / 1_048_576)))
        }
        return fields
    }

    static func output(_ fields: [(String, String)]) {
        Console.output("{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
    }
}
