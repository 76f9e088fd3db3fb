import Foundation
import NPID
import Torch

/// `npid report`: write a run folder's self-contained HTML report.
enum ReportCommand {
    /// Any data option starts a new evaluation; without one the saved table and pictures are used.
    static let specs: [OptionSpec] = DataOptions.specs + [
        OptionSpec("--recompute", help: "with --data: compare with recomputed training features instead of the memory bank"),
        OptionSpec("--knn-k", value: "K", help: "with --data: neighbours of the weighted vote (default: the run's)"),
        OptionSpec("--knn-t", value: "T", help: "with --data: temperature σ of the vote (default: the run's τ)"),
    ] + networkRuntimeSpecs

    static let help = helpText(
        usage: "npid report RUN_DIR [--data ROOT | --train-dir DIR --test-dir DIR]",
        summary: """
        Writes RUN_DIR/report.html, one file with no outside references: learning curves,
        the kNN table with per-class accuracy and confusion matrix, retrieval pictures of
        successes and failures, the epoch table and the configuration. npid train refreshes
        it after every epoch; run this to rebuild it, or with --data (or the split folders)
        to evaluate again.
        """,
        specs: specs)

    static func run(_ arguments: [String]) throws {
        let options = try ParsedOptions(arguments, specs: specs, command: "report", allowsPositional: true)
        guard options.positional.count == 1 else {
            throw UsageError("npid report takes one RUN_DIR, got \(options.positional.count); run npid report --help for an example")
        }
        let runDirectory = options.positional[0]
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: runDirectory, isDirectory: &isFolder) else {
            throw UsageError("run folder \(runDirectory) does not exist; pass the --run-dir of an npid train run")
        }
        guard isFolder.boolValue else {
            throw UsageError("\(runDirectory) is a file, not a run folder; pass the --run-dir of an npid train run")
        }
        let runFiles = [RunFiles.configuration, RunFiles.metrics, Checkpoint.fileName]
        guard runFiles.contains(where: { FileManager.default.fileExists(atPath: runDirectory + "/" + $0) }) else {
            throw UsageError("\(runDirectory) contains none of \(runFiles.joined(separator: ", ")); pass the --run-dir of an npid train run")
        }
        let evaluatesAgain = ["--data", "--dataset", "--train-dir", "--test-dir"].contains(where: options.has)
        for flag in ["--recompute", "--knn-k", "--knn-t", "--on-bad-image", "--download", "--cache-mb"]
        where options.has(flag) && !evaluatesAgain {
            throw UsageError("\(flag) needs a data option (--data ROOT, or --train-dir and --test-dir), because only a new evaluation uses it")
        }

        if evaluatesAgain {
            try evaluate(runDirectory: runDirectory, options: options)
        }
        let path = runDirectory + "/" + RunFiles.report
        let report = try RunReport.load(runDirectory: runDirectory)
        for warning in report.warnings {
            Console.log("warning: \(warning)")
        }
        try report.write(to: path)
        Console.output("report: \(path)")
    }

    /// Evaluates the run's checkpoint on the data that `options` name and saves the kNN table
    /// and retrieval pictures.
    static func evaluate(runDirectory: String, options: ParsedOptions) throws {
        let dataRequest = try DataOptions.request(options, command: "report")
        let checkpointPath = runDirectory + "/" + Checkpoint.fileName
        guard FileManager.default.fileExists(atPath: checkpointPath) else {
            let dataFlags = ["--data", "--dataset", "--train-dir", "--test-dir"].filter(options.has)
                .joined(separator: " and ")
            throw UsageError("a new evaluation (\(dataFlags)) needs \(checkpointPath), which does not exist; drop \(dataFlags) to rebuild the report from the saved files")
        }
        let runtime = try runtimeOptions(options)
        let model = try TrainedModel(checkpointPath: checkpointPath, runtime: runtime)
        let neighborCount = try options.int("--knn-k") ?? model.configuration.neighborCount
        guard neighborCount >= 1 else { throw UsageError("--knn-k must be at least 1, got \(neighborCount)") }
        let temperature = try knnTemperatureOption(options) ?? model.configuration.temperature

        let data = try DataOptions.load(dataRequest, limitPerClass: model.configuration.limitPerClass,
                                        testLimitPerClass: model.configuration.testLimitPerClass)
        try model.checkClasses(of: data)
        let recompute = options.has("--recompute")
        let bank = try model.trainingFeatures(of: data.train, recompute: recompute)
        let labels = try Tensor(data.train.labels.map(Int64.init)).to(device: runtime.device)
        let knn = WeightedKNN(neighborCount: neighborCount, temperature: temperature)
        let accuracy = try knn.evaluate(queries: model.features(of: data.test), queryLabels: data.test.labels,
                                        bank: bank, bankLabels: labels, classCount: data.classNames.count)
        try ReportSnapshot().write(accuracy: accuracy, epoch: model.checkpoint.epochsDone,
                                   features: recompute ? "recomputed features" : "memory bank",
                                   neighborCount: neighborCount, temperature: temperature, data: data, bank: bank,
                                   queryFeatures: { try model.features(of: $0) }, runDirectory: runDirectory)
        // σ is printed only when it differs from the run's τ, as npid eval does.
        let sigma = temperature == model.configuration.temperature ? "" : ", σ=\(temperature)"
        Console.output(String(format: "kNN top-1 %.2f%%  top-5 %.2f%%  (%@, k=%d%@, %d test images)",
                              accuracy.top1, accuracy.top5, recompute ? "recomputed features" : "memory bank",
                              min(neighborCount, data.train.count), sigma, accuracy.queryCount))
        noteTopFiveCoversEveryClass(classCount: data.classNames.count)
    }
}
