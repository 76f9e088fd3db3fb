import Foundation
import NPID
import Torch

/// `npid train`: learn features on an image folder, report kNN accuracy, checkpoint every epoch.
enum TrainCommand {
    static let defaults = TrainingConfiguration.defaults

    static let specs: [OptionSpec] = [
        OptionSpec("--data", value: "ROOT", help: "image folder with train/CLASS/*.jpg|png and test/CLASS/..."),
        OptionSpec("--run-dir", value: "DIR", help: "where config.json, metrics.jsonl and checkpoint.safetensors go (default runs/npid)"),
        OptionSpec("--resume", value: "RUN_DIR", help: "continue the run saved in RUN_DIR (its configuration is reused)"),
        OptionSpec("--epochs", value: "N", help: "epochs in all (default \(defaults.epochs))"),
        OptionSpec("--limit-per-class", value: "N", help: "train on the first N images of each class, in file-name order (default all)"),
        OptionSpec("--test-limit-per-class", value: "N", help: "test images per class (default N/5 with --limit-per-class, else all)"),
        OptionSpec("--arch", value: "NAME", help: "resnet18, resnet34 or resnet50 (default \(defaults.model.architecture.rawValue))"),
        OptionSpec("--width", value: "W", help: "channels of the first stage; 64 is the published ResNet, 32 a quarter of the compute (default \(defaults.model.width))"),
        OptionSpec("--low-dim", value: "D", help: "feature dimension (default \(defaults.model.featureDimension))"),
        OptionSpec("--nce-k", value: "K", help: "noise samples of NCE; 0 trains with the full softmax (default \(defaults.negativeCount))"),
        OptionSpec("--nce-t", value: "T", help: "temperature τ (default \(defaults.temperature))"),
        OptionSpec("--nce-m", value: "M", help: "memory bank momentum m (default \(defaults.bankMomentum))"),
        OptionSpec("--lr", value: "LR", help: "base learning rate (default \(defaults.learningRate))"),
        OptionSpec("--schedule", value: "NAME", help: "step (x0.1 at epochs 120 and 160, as the original release) or cosine (default \(defaults.schedule.rawValue))"),
        OptionSpec("-b", "--batch-size", value: "B", help: "images per step (default \(defaults.batchSize))"),
        OptionSpec("--knn-k", value: "K", help: "neighbours of the weighted kNN vote (default \(defaults.neighborCount))"),
        OptionSpec("--seed", value: "S", help: "seed of initialisation, shuffling, augmentation and noise (default \(defaults.seed))"),
        OptionSpec("--device", value: "DEV", help: "cpu, cuda or cuda:N (default cpu)"),
        OptionSpec("--threads", value: "N", help: "libtorch threads (default: one per core)"),
        OptionSpec("--workers", value: "N", help: "loader threads preparing batches ahead (default 1)"),
        OptionSpec("--no-channels-last", help: "keep NCHW memory layout instead of channels-last"),
        OptionSpec("--eval-untrained", help: "also measure the kNN accuracy of the untrained network first"),
        OptionSpec("--bench-steps", value: "N", help: "only time N training steps (after 2 warm-up steps), print images/s as JSON and exit"),
    ]

    static let help = helpText(
        usage: "npid train --data ROOT [--run-dir DIR] [options]",
        summary: """
        Trains a ResNet by non-parametric instance discrimination (memory bank + NCE),
        evaluates weighted kNN on the test split after every epoch, and writes a checkpoint
        at every epoch end. Example:
          npid train --data cifar10-jpeg --run-dir runs/c10 --epochs 200
        """,
        specs: specs)

    static func run(_ arguments: [String]) throws {
        let options = try ParsedOptions(arguments, specs: specs, command: "train")
        var configuration: TrainingConfiguration
        var resume: Checkpoint?
        var runDirectory = options.string("--run-dir") ?? "runs/npid"

        if let resumeDirectory = options.string("--resume") {
            let path = resumeDirectory + "/" + Checkpoint.fileName
            guard FileManager.default.fileExists(atPath: path) else {
                throw UsageError("--resume \(resumeDirectory) has no \(Checkpoint.fileName); pass the --run-dir of an earlier run")
            }
            let checkpoint = try Checkpoint.read(contentsOf: path)
            var requested = checkpoint.configuration
            try apply(options, to: &requested)
            if let conflict = contradictions(saved: checkpoint.configuration, requested: requested).first {
                throw UsageError("\(conflict.flag) \(conflict.requested) contradicts the checkpoint in \(resumeDirectory), which was trained with \(conflict.saved); drop \(conflict.flag) to resume, or start a new --run-dir")
            }
            configuration = requested
            resume = checkpoint
            if options.string("--run-dir") == nil {
                runDirectory = resumeDirectory
            }
            Console.log("resuming \(resumeDirectory) after epoch \(checkpoint.epochsDone) of \(configuration.epochs)")
        } else {
            configuration = defaults
            try apply(options, to: &configuration)
            if configuration.limitPerClass != nil && configuration.testLimitPerClass == nil {
                // The reference script keeps a fifth as many test images per class.
                configuration.testLimitPerClass = max(1, configuration.limitPerClass! / 5)
            }
        }
        try configuration.validate()
        let runtime = try runtimeOptions(options)
        let dataRoot = try options.requiredString("--data")
        let benchSteps = try options.int("--bench-steps")
        if let steps = benchSteps, steps < 1 {
            throw UsageError("--bench-steps must be at least 1, got \(steps)")
        }

        // A run folder with a checkpoint belongs to one run: only --resume of that folder may write to it.
        let resumesHere = options.string("--resume").map { samePath($0, runDirectory) } ?? false
        if benchSteps == nil, !resumesHere, FileManager.default.fileExists(atPath: runDirectory + "/" + Checkpoint.fileName) {
            throw UsageError("--run-dir \(runDirectory) already contains a checkpoint; pass --resume \(runDirectory) to continue it, or choose another --run-dir")
        }

        let started = Date()
        let data = try TrainingData.load(root: dataRoot, limitPerClass: configuration.limitPerClass,
                                         testLimitPerClass: configuration.testLimitPerClass,
                                         threads: ProcessInfo.processInfo.activeProcessorCount)
        Console.log(String(format: "decoded %d training and %d test images in %.1f s",
                           data.train.count, data.test.count, Date().timeIntervalSince(started)))

        let trainer = try Trainer(configuration: configuration, runtime: runtime, data: data,
                                  runDirectory: runDirectory, resume: resume)
        if let steps = benchSteps {
            let rate = try trainer.measureThroughput(steps: steps)
            Console.output(String(format: #"{"event": "bench", "images_per_s": %.2f, "steps": %d, "batch_size": %d, "device": "%@", "threads": %d}"#,
                                  rate, steps, configuration.batchSize, runtime.device.description, Torch.threadCount))
            return
        }
        let reporter = RunReporter(trainer: trainer)
        let result = try trainer.run { event in
            report(event, epochs: configuration.epochs)
            if case .epochFinished(let metrics) = event {
                for error in reporter.epochFinished(metrics) {
                    Console.log("warning: could not refresh \(reporter.reportPath) or its files: \(error)")
                }
            }
        }

        Console.output(String(format: "kNN top-1 %.2f%%  top-5 %.2f%%  (memory bank, k=%d, %d test images)",
                              result.bankAccuracy.top1, result.bankAccuracy.top5,
                              min(configuration.neighborCount, data.train.count), result.bankAccuracy.queryCount))
        Console.output(String(format: "kNN top-1 %.2f%%  top-5 %.2f%%  (recomputed training features)",
                              result.recomputedAccuracy.top1, result.recomputedAccuracy.top5))
        if let untrained = result.untrainedAccuracy {
            Console.output(String(format: "kNN top-1 %.2f%%  top-5 %.2f%%  (untrained network, recomputed; chance is %.1f%%)",
                                  untrained.top1, untrained.top5, 100 / Double(data.classNames.count)))
        }
        Console.output("checkpoint: \(result.checkpointPath)")
        Console.output("report: \(reporter.reportPath)")
    }

    /// Overrides fields of `configuration` with the flags given.
    static func apply(_ options: ParsedOptions, to configuration: inout TrainingConfiguration) throws {
        if let value = try options.int("--epochs") { configuration.epochs = value }
        if let value = try options.int("--limit-per-class") { configuration.limitPerClass = value }
        if let value = try options.int("--test-limit-per-class") { configuration.testLimitPerClass = value }
        if let name = options.string("--arch") {
            guard let architecture = Architecture(rawValue: name) else {
                throw UsageError("unknown --arch '\(name)'; choose one of \(Architecture.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            configuration.model.architecture = architecture
        }
        if let value = try options.int("--width") { configuration.model.width = value }
        if let value = try options.int("--low-dim") { configuration.model.featureDimension = value }
        if let value = try options.int("--nce-k") { configuration.negativeCount = value }
        if let value = try options.double("--nce-t") { configuration.temperature = value }
        if let value = try options.double("--nce-m") { configuration.bankMomentum = value }
        if let value = try options.double("--lr") { configuration.learningRate = value }
        if let name = options.string("--schedule") {
            guard let schedule = LearningRateSchedule(rawValue: name) else {
                throw UsageError("unknown --schedule '\(name)'; choose step or cosine")
            }
            configuration.schedule = schedule
        }
        if let value = try options.int("--batch-size") { configuration.batchSize = value }
        if let value = try options.int("--knn-k") { configuration.neighborCount = value }
        if let text = options.string("--seed") {
            guard let seed = UInt64(text) else {
                throw UsageError("--seed expects a whole number from 0 to \(UInt64.max), got '\(text)'")
            }
            configuration.seed = seed
        }
    }

    /// Settings that define a run's result and differ between a checkpoint and the flags
    /// given with --resume (only --epochs may change).
    static func contradictions(saved: TrainingConfiguration, requested: TrainingConfiguration)
        -> [(flag: String, saved: String, requested: String)] {
        var found: [(flag: String, saved: String, requested: String)] = []
        func compare<T: Equatable>(_ flag: String, _ old: T, _ new: T) {
            if old != new {
                found.append((flag, "\(old)", "\(new)"))
            }
        }
        compare("--arch", saved.model.architecture.rawValue, requested.model.architecture.rawValue)
        compare("--width", saved.model.width, requested.model.width)
        compare("--low-dim", saved.model.featureDimension, requested.model.featureDimension)
        compare("--limit-per-class", saved.limitPerClass.map(String.init) ?? "all", requested.limitPerClass.map(String.init) ?? "all")
        compare("--test-limit-per-class", saved.testLimitPerClass.map(String.init) ?? "all",
                requested.testLimitPerClass.map(String.init) ?? "all")
        compare("--nce-k", saved.negativeCount, requested.negativeCount)
        compare("--nce-t", saved.temperature, requested.temperature)
        compare("--nce-m", saved.bankMomentum, requested.bankMomentum)
        compare("--lr", saved.learningRate, requested.learningRate)
        compare("--schedule", saved.schedule.rawValue, requested.schedule.rawValue)
        compare("--batch-size", saved.batchSize, requested.batchSize)
        compare("--knn-k", saved.neighborCount, requested.neighborCount)
        compare("--seed", saved.seed, requested.seed)
        return found
    }

    static func report(_ event: TrainingEvent, epochs: Int) {
        switch event {
        case .message(let text):
            Console.log(text)
        case .step(let progress):
            Console.progress(ProgressLine.render(epoch: progress.epoch + 1, epochs: progress.epochs,
                                                 step: progress.step + 1, steps: progress.steps, loss: progress.loss,
                                                 imagesPerSecond: progress.imagesPerSecond, elapsed: progress.elapsed,
                                                 width: Console.columns),
                             force: progress.step + 1 == progress.steps)
        case .untrainedAccuracy(let accuracy):
            Console.output(String(format: "untrained network: kNN top-1 %.2f%%  top-5 %.2f%% (recomputed features)",
                                  accuracy.top1, accuracy.top5))
        case .epochFinished(let metrics):
            Console.clearProgress()
            Console.output(ProgressLine.epochSummary(metrics, epochs: epochs))
        }
    }
}

/// Device, threads and workers shared by the subcommands that run a network.
func runtimeOptions(_ options: ParsedOptions) throws -> RuntimeOptions {
    var runtime = RuntimeOptions()
    if let name = options.string("--device") {
        guard let device = Device(parsing: name) else {
            throw UsageError("unknown --device '\(name)'; use cpu, cuda or cuda:N")
        }
        runtime.device = device
    }
    if case .cuda(let index) = runtime.device {
        do {
            try Torch.loadCUDA()
        } catch let error as TorchError {
            throw CUDAUnavailableError(reason: error.message)
        }
        guard index < Torch.cudaDeviceCount else {
            throw UsageError("--device cuda:\(index) does not exist; this machine has \(Torch.cudaDeviceCount) GPU(s)")
        }
    }
    if let threads = try options.int("--threads") {
        guard threads >= 1 else { throw UsageError("--threads must be at least 1, got \(threads)") }
        try Torch.setThreadCount(threads)
        runtime.threads = threads
    }
    if let workers = try options.int("--workers") {
        guard workers >= 0 else { throw UsageError("--workers must be 0 or more, got \(workers)") }
        runtime.workers = workers
    }
    runtime.channelsLast = !options.has("--no-channels-last")
    runtime.evaluateUntrained = options.has("--eval-untrained")
    return runtime
}

/// --device cuda on a machine where libtorch's CUDA backend cannot start (a failure, exit 1).
struct CUDAUnavailableError: Error, CustomStringConvertible {
    let reason: String

    var description: String {
        "--device cuda is not available here (\(reason)); use --device cpu, or run on a machine with an NVIDIA GPU and libtorch's CUDA libraries"
    }
}

/// True when two paths name the same folder once `.`/`..` and symbolic links are resolved.
func samePath(_ first: String, _ second: String) -> Bool {
    URL(fileURLWithPath: first).resolvingSymlinksInPath().standardizedFileURL.path
        == URL(fileURLWithPath: second).resolvingSymlinksInPath().standardizedFileURL.path
}
