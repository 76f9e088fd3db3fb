import Foundation
import NPID
import Torch

/// `npid train`: learn features on an image folder, report kNN accuracy, checkpoint every epoch.
enum TrainCommand {
    static let defaults = TrainingConfiguration.defaults

    static let specs: [OptionSpec] = DataOptions.specs + [
        OptionSpec("--run-dir", value: "DIR", help: "where config.json, metrics.jsonl and checkpoint.safetensors go (default runs/npid)"),
        OptionSpec("--resume", value: "RUN_DIR", help: "continue the run saved in RUN_DIR (its configuration is reused)"),
        OptionSpec("--epochs", value: "N", help: "epochs in all (default \(defaults.epochs))"),
        OptionSpec("--limit-per-class", value: "N", help: "train on the first N images of each class, in file-name order (default all)"),
        OptionSpec("--test-limit-per-class", value: "N", help: "test images per class (default N/5 with --limit-per-class, else all)"),
        OptionSpec("--arch", value: "NAME", help: "resnet18, resnet34 or resnet50 (default \(defaults.model.architecture.rawValue))"),
        OptionSpec("--width", value: "W", help: "channels of the first stage; 64 is the published ResNet, 32 a quarter of the compute (default \(defaults.model.width))"),
        OptionSpec("--low-dim", value: "D", help: "feature dimension (default \(defaults.model.featureDimension))"),
        OptionSpec("--image-size", value: "S", help: "side of the square network input in pixels (default \(defaults.imageSize), or \(TrainingConfiguration.largeImageSize) when the training images' median shorter side is larger than \(TrainingConfiguration.smallImageSide) px)"),
        OptionSpec("--stem", value: "NAME", help: "cifar (3x3 stride-1 convolution) or imagenet (7x7 stride-2 and max-pool) (default imagenet for --image-size over \(TrainingConfiguration.smallImageSide), else cifar)"),
        OptionSpec("--nce-k", value: "K", help: "noise rows per sample for nce and softmax-ce; 0 trains with the full softmax (default \(defaults.negativeCount))"),
        OptionSpec("--nce-t", value: "T", help: "temperature τ (default \(defaults.temperature))"),
        OptionSpec("--nce-m", value: "M", help: "memory bank momentum m (default \(defaults.bankMomentum))"),
        OptionSpec("--loss", value: "NAME", help: "nce (noise-contrastive estimation) or softmax-ce (cross-entropy over the positive and K sampled rows) (default \(defaults.loss.rawValue))"),
        OptionSpec("--nce-z", value: "MODE", help: "NCE's Z: fixed (estimated from the first batch) or momentum (a moving average over batches) (default \(defaults.normalizationMode.rawValue))"),
        OptionSpec("--nce-z-rate", value: "R", help: "rate r of --nce-z momentum, Z ← (1 − r)·Z + r·(this batch's estimate) (default \(defaults.normalizationRate))"),
        OptionSpec("--proximal", value: "LAMBDA", help: "weight λ of the proximal term λ·‖f_i − v_i‖² added to the loss; 0 turns it off (default \(defaults.proximalWeight))"),
        OptionSpec("--lr", value: "LR", help: "base learning rate (default \(defaults.learningRate))"),
        OptionSpec("--momentum", value: "M", help: "SGD momentum (default \(defaults.sgdMomentum))"),
        OptionSpec("--weight-decay", value: "W", help: "L2 weight decay of SGD (default \(defaults.weightDecay))"),
        OptionSpec("--schedule", value: "NAME", help: "step (x0.1 at epochs 120 and 160, as the original release) or cosine (default \(defaults.schedule.rawValue))"),
        OptionSpec("-b", "--batch-size", value: "B", help: "images per step (default \(defaults.batchSize))"),
        OptionSpec("--knn-k", value: "K", help: "neighbours of the weighted kNN vote (default \(defaults.neighborCount))"),
        OptionSpec("--seed", value: "S", help: "seed of initialisation, shuffling, augmentation and noise (default \(defaults.seed))"),
        OptionSpec("--device", value: "DEV", help: "cpu, cuda or cuda:N (default cpu)"),
        OptionSpec("--threads", value: "N", help: "libtorch threads (default: one per core on cpu, 1 on cuda)"),
        OptionSpec("--workers", value: "N", help: "loader threads preparing batches ahead (default: 1 on cpu, one per core but one on cuda)"),
        OptionSpec("--no-channels-last", help: "keep NCHW memory layout instead of channels-last (CPU training of --width below 16 always uses NCHW)"),
        OptionSpec("--precision", value: "P", help: "fp32 or bf16 (autocast) for the network; loss and bank stay fp32 (default: bf16 on cuda and on CPUs with bfloat16 units (AVX-512 BF16 or AMX), else fp32)"),
        OptionSpec("--eval-untrained", help: "also measure the kNN accuracy of the untrained network first"),
        OptionSpec("--keep-checkpoints", value: "N", help: "checkpoints kept in the run folder; checkpoint.safetensors always names the newest (default \(RuntimeOptions().keepCheckpoints))"),
        OptionSpec("--bench-steps", value: "N", help: "only time N training steps (after 2 warm-up steps), print images/s as JSON and exit"),
    ] + DistributedOptions.specs

    static let help = helpText(
        usage: "npid train --data ROOT [--run-dir DIR] [options]",
        summary: """
        Trains a ResNet by non-parametric instance discrimination (memory bank + NCE),
        evaluates weighted kNN on the test split after every epoch, and writes a checkpoint
        at every epoch end. SIGINT (Ctrl-C), SIGTERM or SIGHUP finishes the current step or
        evaluation, saves a checkpoint that --resume continues from, and exits with 130, 143 or 129.
        With --nproc, the launcher passes SIGHUP on as SIGTERM, so the run exits with 143.
        Example:
          npid train --data cifar10-jpeg --run-dir runs/c10 --epochs 200
        """,
        specs: specs)

    static func run(_ arguments: [String]) throws {
        let options = try ParsedOptions(arguments, specs: specs, command: "train")
        var configuration: TrainingConfiguration
        var resume: Checkpoint?
        // Logged once the process has its rank, because rank 0 alone reports for a run.
        var resumeMessage: String?
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
            if requested.epochs < checkpoint.epochsDone {
                throw UsageError("--epochs \(requested.epochs) is fewer than the \(checkpoint.epochsDone) epochs the run in \(resumeDirectory) has finished; pass --epochs \(checkpoint.epochsDone) or more")
            }
            configuration = requested
            resume = checkpoint
            let logWarning = try checkMetricsLog(of: resumeDirectory, epochsDone: checkpoint.epochsDone)
            if options.string("--run-dir") == nil {
                runDirectory = resumeDirectory
            }
            let place = checkpoint.stepInEpoch == 0
                ? "after epoch \(checkpoint.epochsDone) of \(configuration.epochs)"
                : "in epoch \(checkpoint.epochsDone + 1) of \(configuration.epochs) after \(counted(checkpoint.epochImageCount, "image")) (step \(checkpoint.stepInEpoch) on \(counted(checkpoint.worldSize, "rank")))"
            resumeMessage = "resuming \(resumeDirectory) \(place)"
            if let logWarning {
                resumeMessage! += "\n" + logWarning
            }
            if options.has("--eval-untrained") && (checkpoint.epochsDone > 0 || checkpoint.stepInEpoch > 0) {
                resumeMessage! += "\nnote: --eval-untrained measures the network before its first step, which this run has passed, so it is skipped"
            }
            if checkpoint.epochsDone >= configuration.epochs {
                resumeMessage! += "\nnote: the run has finished its \(counted(configuration.epochs, "epoch", plural: "epochs")), so this only evaluates it again; pass --epochs \(configuration.epochs + 1) or more to train further"
            }
            let savedEpochs = checkpoint.configuration.epochs
            if configuration.schedule == .cosine && configuration.epochs != savedEpochs
                && (checkpoint.epochsDone > 0 || checkpoint.stepInEpoch > 0) {
                resumeMessage! += "\nnote: the cosine schedule now spans \(configuration.epochs) epochs instead of \(savedEpochs), so the learning rate jumps to the new curve here; a run of \(configuration.epochs) epochs from the start would differ"
            }
        } else {
            configuration = defaults
            try apply(options, to: &configuration)
            if configuration.limitPerClass != nil && configuration.testLimitPerClass == nil {
                // The reference script keeps a fifth as many test images per class.
                configuration.testLimitPerClass = max(1, configuration.limitPerClass! / 5)
            }
        }
        try configuration.validate()
        try requireBatchFitsMemory(imageSize: configuration.imageSize, batchSize: configuration.batchSize)
        var runtime = try runtimeOptions(options)
        if let keep = try options.int("--keep-checkpoints") {
            guard keep >= 1 else { throw UsageError("--keep-checkpoints must be at least 1, got \(keep)") }
            runtime.keepCheckpoints = keep
        }
        let dataRequest = try DataOptions.request(options, command: "train")
        let benchSteps = try options.int("--bench-steps")
        if let steps = benchSteps, steps < 1 {
            throw UsageError("--bench-steps must be at least 1, got \(steps)")
        }

        // A run folder with a checkpoint belongs to one run: only --resume of that folder may write to it.
        let resumesHere = options.string("--resume").map { samePath($0, runDirectory) } ?? false
        if benchSteps == nil, !resumesHere, FileManager.default.fileExists(atPath: runDirectory + "/" + Checkpoint.fileName) {
            throw UsageError("--run-dir \(runDirectory) already contains a checkpoint; pass --resume \(runDirectory) to continue it, or choose another --run-dir")
        }
        try requireRunFolderOutsideSplits(runDirectory, source: dataRequest.source)

        let environment = ProcessInfo.processInfo.environment
        if options.has("--nproc") {
            guard benchSteps == nil else {
                throw UsageError("--bench-steps measures one process; drop --nproc")
            }
            // Each rank would print the same layout error, so the launcher checks the folders once
            // first. NOTE: images that fail to decode are still reported by every rank.
            try TrainingData.checkLayout(of: dataRequest.source)
            // Likewise a resume onto other images. With --on-bad-image skip the ranks decide which
            // images remain, so only they can check.
            if let resume, dataRequest.badImagePolicy == .fail, case .folders(let trainPath, _) = dataRequest.source {
                let folder = try ImageFolder(split: trainPath, limitPerClass: configuration.limitPerClass)
                try resume.checkResumable(onFolder: folder, path: options.string("--resume")! + "/" + Checkpoint.fileName)
            }
            let launcher = try Launcher(options: options, arguments: arguments, environment: environment,
                                        resumeHint: resumeCommand(options, runDirectory: runDirectory),
                                        checkpointPath: runDirectory + "/" + Checkpoint.fileName)
            // Machine 0's launcher holds the run folder's lock for its rank 0, so that a second
            // run fails here at once instead of leaving its other ranks waiting at rendezvous.
            let folderLock = launcher.nodeRank == 0 ? try RunFolderLock(runDirectory: runDirectory) : nil
            do {
                try launcher.run(folderLock: folderLock)
            } catch {
                folderLock?.removeFolderIfUnused()
                throw error
            }
        }
        let distributedSettings = try DistributedOptions.rankSettings(options, environment: environment)
        if distributedSettings != nil && benchSteps != nil {
            throw UsageError("--bench-steps measures one process; run it without --world-size or WORLD_SIZE")
        }
        let isLeader = (distributedSettings?.rank ?? 0) == 0
        if let settings = distributedSettings, options.string("--device") == "cuda" {
            // NOTE: not run on a GPU yet; collectives copy CUDA tensors through host memory.
            guard settings.localRank < Torch.cudaDeviceCount else {
                throw UsageError("LOCAL_RANK \(settings.localRank) has no GPU: this machine has \(Torch.cudaDeviceCount); start at most that many ranks per machine")
            }
            runtime.device = .cuda(settings.localRank)
        }
        Console.quiet = !isLeader

        if let resumeMessage {
            Console.log(resumeMessage)
        }
        if configuration.synchronizeBatchNorm, distributedSettings == nil {
            Console.log("warning: --sync-bn does nothing in a run of one process; batch norm uses each step's own batch")
        }

        // The process that writes the run folder holds its lock: a lone process, or rank 0 when
        // no npid launcher holds it. An existing folder is locked before the data loads, so that
        // a second run fails at once. A new one is created only after the data loaded, so that
        // bad data leaves no folder behind.
        let ownsRunFolder = benchSteps == nil && isLeader && environment[LauncherWatch.environmentKey] == nil
        var folderLock: RunFolderLock?
        if ownsRunFolder, FileManager.default.fileExists(atPath: runDirectory) {
            folderLock = try RunFolderLock(runDirectory: runDirectory)
        }
        defer { withExtendedLifetime(folderLock) {} }

        let signals = benchSteps == nil ? StopSignals.install(runDirectory: runDirectory) : nil
        if let settings = distributedSettings {
            LauncherWatch.start(environment: environment, rank: settings.rank)
        }
        let data = try DataOptions.load(dataRequest, limitPerClass: configuration.limitPerClass,
                                        testLimitPerClass: configuration.testLimitPerClass, logsDecodeTime: true)
        if resume == nil {
            chooseInputDefaults(&configuration, for: data, options: options)
        }

        if ownsRunFolder, folderLock == nil {
            folderLock = try RunFolderLock(runDirectory: runDirectory)
        }

        let distributed = try distributedSettings.map { try DistributedRun(settings: $0) }
        let resumeDirectory = options.string("--resume")
        let trainer: Trainer
        do {
            trainer = try Trainer(configuration: configuration, runtime: runtime, data: data,
                                  runDirectory: runDirectory, resume: resume,
                                  resumePath: resumeDirectory.map { $0 + "/" + Checkpoint.fileName },
                                  distributed: distributed)
        } catch {
            // The Trainer rejects a checkpoint that does not fit the data after the lock
            // created the folder, which would otherwise stay behind empty.
            folderLock?.removeFolderIfUnused()
            throw error
        }
        // The copy waits for the Trainer, which rejects a checkpoint that does not fit the data.
        if let resumeDirectory, benchSteps == nil, isLeader, !samePath(resumeDirectory, runDirectory) {
            try copyRun(from: resumeDirectory, to: runDirectory)
        }
        if let steps = benchSteps {
            let rate = try trainer.measureThroughput(steps: steps).imagesPerSecond
            Console.output(String(format: #"{"event": "bench", "images_per_s": %.2f, "steps": %d, "batch_size": %d, "device": "%@", "precision": "%@", "threads": %d}"#,
                                  rate, steps, configuration.batchSize, runtime.device.description,
                                  runtime.effectivePrecision.rawValue, Torch.threadCount))
            return
        }
        signals?.beginTraining()
        let reporter = RunReporter(trainer: trainer)
        let result: TrainingResult
        do {
            result = try trainer.run(shouldStop: { signals?.stopRequested ?? false }) { event in
                report(event, epochs: configuration.epochs)
                if isLeader, case .epochFinished(let metrics) = event {
                    for error in reporter.epochFinished(metrics) {
                        Console.log("warning: could not refresh \(reporter.reportPath) or its files: \(error)")
                    }
                }
            }
        } catch let stop as TrainingInterrupted {
            LauncherWatch.stop()
            // A rank without a signal of its own stopped because another rank received one.
            let number = signals?.signalNumber ?? SIGTERM
            let cause = signals?.signalNumber == nil ? "at another rank's request" : "by \(StopSignals.name(of: number))"
            Console.log("npid: stopped \(cause) \(describe(stop)); checkpoint \(stop.checkpointPath) contains this state; continue with: \(resumeCommand(options, runDirectory: runDirectory))")
            exit(128 + number)
        } catch let lost as LostRankError {
            Console.quiet = false
            let next = trainer.hasCheckpoint
                ? "continue from the last checkpoint with: \(resumeCommand(options, runDirectory: runDirectory))"
                : "no checkpoint was written, so start the run again once the cause is fixed"
            Console.error("\(lost); \(next)")
            exit(1)
        }
        guard isLeader else {
            return
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
        noteTopFiveCoversEveryClass(classCount: data.classNames.count)
        Console.output("checkpoint: \(result.checkpointPath)")
        if FileManager.default.fileExists(atPath: reporter.reportPath) {
            Console.output("report: \(reporter.reportPath)")
        } else {
            // The report is refreshed after each epoch, and a finished run resumed elsewhere trains none.
            Console.output("report: not written yet; write it with npid report \(runDirectory)")
        }
    }

    /// Sets the input size and stem from the training images, where the flags leave them open.
    static func chooseInputDefaults(_ configuration: inout TrainingConfiguration, for data: TrainingData,
                                    options: ParsedOptions) {
        if !options.has("--image-size") {
            configuration.imageSize = TrainingConfiguration.defaultImageSize(for: data.train.imageSizes)
        }
        if !options.has("--stem") {
            configuration.model.stem = Stem.defaultStem(forImageSize: configuration.imageSize)
        }
        if configuration.imageSize != defaults.imageSize || configuration.model.stem != defaults.model.stem {
            Console.log("network input \(configuration.imageSize)x\(configuration.imageSize) pixels with the \(configuration.model.stem.rawValue) stem")
        }
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
        if let value = try options.int("--image-size") { configuration.imageSize = value }
        if let name = options.string("--stem") {
            guard let stem = Stem(rawValue: name) else {
                throw UsageError("unknown --stem '\(name)'; choose cifar or imagenet")
            }
            configuration.model.stem = stem
        }
        if let value = try options.int("--nce-k") { configuration.negativeCount = value }
        if let value = try options.double("--nce-t") { configuration.temperature = value }
        if let value = try options.double("--nce-m") { configuration.bankMomentum = value }
        if let name = options.string("--loss") {
            guard let loss = LossFunction(rawValue: name) else {
                throw UsageError("unknown --loss '\(name)'; choose one of \(LossFunction.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            configuration.loss = loss
        }
        if let name = options.string("--nce-z") {
            guard let mode = NormalizationMode(rawValue: name) else {
                throw UsageError("unknown --nce-z '\(name)'; choose one of \(NormalizationMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            configuration.normalizationMode = mode
        }
        if let value = try options.double("--nce-z-rate") {
            guard configuration.normalizationMode == .momentum else {
                throw UsageError("--nce-z-rate sets the rate of --nce-z momentum; add --nce-z momentum or drop --nce-z-rate")
            }
            configuration.normalizationRate = value
        }
        if let value = try options.double("--proximal") { configuration.proximalWeight = value }
        if let value = try options.double("--lr") { configuration.learningRate = value }
        if let value = try options.double("--momentum") { configuration.sgdMomentum = value }
        if let value = try options.double("--weight-decay") { configuration.weightDecay = value }
        if let name = options.string("--schedule") {
            guard let schedule = LearningRateSchedule(rawValue: name) else {
                throw UsageError("unknown --schedule '\(name)'; choose step or cosine")
            }
            configuration.schedule = schedule
        }
        if let value = try options.int("--batch-size") { configuration.batchSize = value }
        if let value = try options.int("--knn-k") { configuration.neighborCount = value }
        if options.has("--sync-bn") { configuration.synchronizeBatchNorm = true }
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
        compare("--image-size", saved.imageSize, requested.imageSize)
        compare("--stem", saved.model.stem.rawValue, requested.model.stem.rawValue)
        compare("--limit-per-class", saved.limitPerClass.map(String.init) ?? "all", requested.limitPerClass.map(String.init) ?? "all")
        compare("--test-limit-per-class", saved.testLimitPerClass.map(String.init) ?? "all",
                requested.testLimitPerClass.map(String.init) ?? "all")
        compare("--nce-k", saved.negativeCount, requested.negativeCount)
        compare("--nce-t", saved.temperature, requested.temperature)
        compare("--nce-m", saved.bankMomentum, requested.bankMomentum)
        compare("--loss", saved.loss.rawValue, requested.loss.rawValue)
        compare("--nce-z", saved.normalizationMode.rawValue, requested.normalizationMode.rawValue)
        compare("--nce-z-rate", saved.normalizationRate, requested.normalizationRate)
        compare("--proximal", saved.proximalWeight, requested.proximalWeight)
        compare("--lr", saved.learningRate, requested.learningRate)
        compare("--momentum", saved.sgdMomentum, requested.sgdMomentum)
        compare("--weight-decay", saved.weightDecay, requested.weightDecay)
        compare("--schedule", saved.schedule.rawValue, requested.schedule.rawValue)
        compare("--batch-size", saved.batchSize, requested.batchSize)
        compare("--knn-k", saved.neighborCount, requested.neighborCount)
        compare("--seed", saved.seed, requested.seed)
        compare("--sync-bn", saved.synchronizeBatchNorm, requested.synchronizeBatchNorm)
        return found
    }

    /// "after epoch 2 of 3" or "in epoch 3 of 3 after step 5 of 12".
    static func describe(_ stop: TrainingInterrupted) -> String {
        let position = stop.position
        if position.stepInEpoch > 0 {
            return "in epoch \(position.epochsDone + 1) of \(stop.epochs) after step \(position.stepInEpoch) of \(stop.stepsPerEpoch)"
        }
        if position.epochsDone >= stop.epochs {
            return "after the last epoch, before the final evaluation"
        }
        return "after epoch \(position.epochsDone) of \(stop.epochs)"
    }

    /// Returns the command that continues a stopped run: --data, --resume and the runtime flags given.
    /// Copies the checkpoint and the epoch records of the run being resumed into a new
    /// --run-dir, so that the new folder contains the whole run: its report and curves start
    /// at epoch 1, and a finished run resumed there has the checkpoint its output names.
    /// The checkpoint goes last: a copy stopped halfway leaves no checkpoint, so the same
    /// command can run again.
    static func copyRun(from source: String, to destination: String) throws {
        try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true)
        for name in ["metrics.jsonl", Checkpoint.fileName] {
            let from = source + "/" + name
            guard FileManager.default.fileExists(atPath: from) else {
                continue
            }
            guard let input = FileHandle(forReadingAtPath: from) else {
                throw FileIOError(operation: "open", path: from, code: errno)
            }
            defer { try? input.close() }
            try AtomicFile.write(to: destination + "/" + name) { writer in
                while let chunk = try input.read(upToCount: 16 << 20), !chunk.isEmpty {
                    try writer.write([UInt8](chunk))
                }
            }
        }
    }

    /// Checks that the run's metrics.jsonl records every epoch up to the checkpoint's, since
    /// resuming appends the next epoch and a gap would make the log unreadable. Returns a
    /// warning when the log is missing or empty, so that the report's curves start later.
    static func checkMetricsLog(of runDirectory: String, epochsDone: Int) throws -> String? {
        let log = MetricsLog(path: runDirectory + "/metrics.jsonl")
        let records = FileManager.default.fileExists(atPath: log.path) ? try log.read() : []
        let earlierRecords = records.filter { $0.epoch <= epochsDone }
        guard let last = earlierRecords.last else {
            return epochsDone == 0 ? nil : "warning: \(log.path) records none of the \(counted(epochsDone, "epoch", plural: "epochs")) before the checkpoint, so the report's curves will start at epoch \(epochsDone + 1)"
        }
        guard last.epoch == epochsDone else {
            throw MetricsLogGap(path: log.path, lastEpoch: last.epoch, epochsDone: epochsDone)
        }
        return nil
    }

    static func resumeCommand(_ options: ParsedOptions, runDirectory: String) -> String {
        var words = ["npid", "train", "--data", options.string("--data") ?? "ROOT", "--resume", runDirectory]
        let environment = ProcessInfo.processInfo.environment
        if !options.has("--nproc"), environment["TORCHELASTIC_USE_AGENT_STORE"] == "True",
           let count = environment["LOCAL_WORLD_SIZE"] {
            // A worker of `npid train --nproc`: the launcher took --nproc off its arguments.
            words += ["--nproc", count]
        }
        for flag in ["--device", "--threads", "--workers", "--keep-checkpoints", "--nproc", "--nnodes", "--node-rank",
                     "--master-addr", "--master-port", "--dist-interface", "--dist-timeout"] {
            if let value = options.string(flag) {
                words += [flag, value]
            }
        }
        for flag in ["--no-channels-last"] where options.has(flag) {
            words.append(flag)
        }
        return words.map(shellQuoted).joined(separator: " ")
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

/// The options that `runtimeOptions(_:)` reads, for the subcommands that run a trained network.
let networkRuntimeSpecs: [OptionSpec] = [
    OptionSpec("--device", value: "DEV", help: "cpu, cuda or cuda:N (default cpu)"),
    OptionSpec("--threads", value: "N", help: "libtorch threads (default: one per core on cpu, 1 on cuda)"),
    OptionSpec("--workers", value: "N", help: "loader threads (default: 1 on cpu, one per core but one on cuda)"),
    OptionSpec("--no-channels-last", help: "keep NCHW memory layout"),
    OptionSpec("--precision", value: "P", help: "fp32 or bf16 (autocast) for the network; features are fp32 (default: bf16 on cuda and on CPUs with bfloat16 units, else fp32)"),
]

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
    let plan = ThreadPlan.defaults(device: runtime.device, coreCount: ProcessInfo.processInfo.activeProcessorCount)
    if let threads = try options.int("--threads") ?? plan.threads {
        guard threads >= 1 else { throw UsageError("--threads must be at least 1, got \(threads)") }
        try requireThreadCountBelowLimit(threads, flag: "--threads")
        try Torch.setThreadCount(threads)
        runtime.threads = threads
    }
    runtime.workers = try options.int("--workers") ?? plan.workers
    guard runtime.workers >= 0 else { throw UsageError("--workers must be 0 or more, got \(runtime.workers)") }
    try requireThreadCountBelowLimit(runtime.workers, flag: "--workers")
    runtime.channelsLast = !options.has("--no-channels-last")
    if let name = options.string("--precision") {
        guard let precision = Precision(rawValue: name) else {
            throw UsageError("unknown --precision '\(name)'; use fp32 or bf16")
        }
        runtime.precision = precision
    }
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

/// Returns `word` as one POSIX shell word: unchanged when it has only safe characters,
/// otherwise in single quotes.
func shellQuoted(_ word: String) -> String {
    let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=@%+,")
    if !word.isEmpty && word.allSatisfy({ safe.contains($0) }) {
        return word
    }
    return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// Throws a usage error when `runDirectory` is a split folder of `source` or lies inside one. The
/// run's folders and report pictures there would become classes or training images of the next run.
func requireRunFolderOutsideSplits(_ runDirectory: String, source: DataSource) throws {
    guard case .folders(let trainPath, let testPath) = source else { return }
    let run = resolvedPathAllowingMissing(runDirectory)
    for split in [trainPath, testPath] {
        let splitPath = resolvedPathAllowingMissing(split)
        if run == splitPath || run.hasPrefix(splitPath + "/") {
            throw UsageError("--run-dir \(runDirectory) would put the run's files in the data split \(split), where they would become training images or classes; choose a --run-dir outside \(split)")
        }
    }
}

/// Returns the absolute form of `path` with symbolic links resolved, also when the path does not
/// exist yet. `resolvingSymlinksInPath` returns a missing path unchanged, so the links of its
/// longest existing ancestor are resolved and the missing components appended to the result.
func resolvedPathAllowingMissing(_ path: String) -> String {
    var existing = URL(fileURLWithPath: path).standardizedFileURL
    var missingComponents: [String] = []
    while !FileManager.default.fileExists(atPath: existing.path) && existing.path != "/" {
        missingComponents.insert(existing.lastPathComponent, at: 0)
        existing.deleteLastPathComponent()
    }
    var resolved = existing.resolvingSymlinksInPath()
    for component in missingComponents {
        resolved.appendPathComponent(component)
    }
    return resolved.standardizedFileURL.path
}

/// True when two paths name the same folder once `.`/`..` and symbolic links are resolved.
func samePath(_ first: String, _ second: String) -> Bool {
    URL(fileURLWithPath: first).resolvingSymlinksInPath().standardizedFileURL.path
        == URL(fileURLWithPath: second).resolvingSymlinksInPath().standardizedFileURL.path
}

/// A metrics log that stops before the checkpoint's epoch, so the next record would leave a gap.
struct MetricsLogGap: Error, CustomStringConvertible {
    let path: String
    let lastEpoch: Int
    let epochsDone: Int

    var description: String {
        let missing = lastEpoch + 1 == epochsDone ? "epoch \(epochsDone)" : "epochs \(lastEpoch + 1) to \(epochsDone)"
        return "metrics log \(path) ends at epoch \(lastEpoch), but the checkpoint is after epoch \(epochsDone), so \(missing) would be missing; restore the missing records, or delete \(path) to resume without the earlier epochs' records"
    }
}
