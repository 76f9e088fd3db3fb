import Foundation
import NPID
import Torch

/// `npid eval`: weighted kNN accuracy of a checkpoint on an image folder's test split.
enum EvalCommand {
    static let specs: [OptionSpec] = [
        OptionSpec("--checkpoint", value: "FILE", help: "checkpoint.safetensors written by npid train"),
    ] + DataOptions.specs + [
        OptionSpec("--recompute", help: "recompute training features without augmentation instead of using the memory bank"),
        OptionSpec("--knn-k", value: "K", help: "neighbours of the weighted vote (default: the run's, usually 200)"),
        OptionSpec("--knn-t", value: "T", help: "temperature σ of the vote's weights exp(s/σ) (default: the run's τ)"),
        OptionSpec("--test-limit-per-class", value: "N", help: "test images per class (default: the run's)"),
    ] + networkRuntimeSpecs

    static let help = helpText(
        usage: "npid eval --checkpoint FILE --data ROOT [--recompute]",
        summary: """
        Reports weighted kNN top-1 and top-5 accuracy on the test split, and per class, for a
        trained checkpoint. By default the training features are the checkpoint's memory bank.
        """,
        specs: specs)

    static func run(_ arguments: [String]) throws {
        let options = try ParsedOptions(arguments, specs: specs, command: "eval")
        let checkpointPath = try options.requiredString("--checkpoint")
        let dataRequest = try DataOptions.request(options, command: "eval")
        let runtime = try runtimeOptions(options)
        try requireFile(checkpointPath, flag: "--checkpoint")

        let model = try TrainedModel(checkpointPath: checkpointPath, runtime: runtime)
        var testLimit = model.configuration.testLimitPerClass
        if let limit = try options.int("--test-limit-per-class") {
            guard limit >= 1 else { throw UsageError("--test-limit-per-class must be at least 1, got \(limit)") }
            testLimit = limit
        }
        let neighborCount = try options.int("--knn-k") ?? model.configuration.neighborCount
        guard neighborCount >= 1 else { throw UsageError("--knn-k must be at least 1, got \(neighborCount)") }
        let temperature = try knnTemperatureOption(options) ?? model.configuration.temperature

        let data = try DataOptions.load(dataRequest, limitPerClass: model.configuration.limitPerClass,
                                        testLimitPerClass: testLimit)
        let recompute = options.has("--recompute")
        let accuracy = try model.evaluate(data: data, recompute: recompute, neighborCount: neighborCount,
                                          temperature: temperature)

        // σ is printed only when it differs from the run's τ, so the default line stays as before.
        let sigma = temperature == model.configuration.temperature ? "" : ", σ=\(temperature)"
        Console.output(String(format: "kNN top-1 %.2f%%  top-5 %.2f%%  (%@, k=%d%@, %d test images, %d training images)",
                              accuracy.top1, accuracy.top5, recompute ? "recomputed features" : "memory bank",
                              min(neighborCount, data.train.count), sigma, accuracy.queryCount, data.train.count))
        noteTopFiveCoversEveryClass(classCount: data.classNames.count)
        let width = data.classNames.map(\.count).max() ?? 5
        for (name, top1) in zip(data.classNames, accuracy.perClassTop1) {
            let padded = name.padding(toLength: max(width, 5), withPad: " ", startingAt: 0)
            Console.output("  \(padded)  " + (top1.map { String(format: "%6.2f%%", $0) } ?? "   n/a"))
        }
    }
}

/// Reads --knn-t, which must be a positive temperature; nil when not given.
func knnTemperatureOption(_ options: ParsedOptions) throws -> Double? {
    guard let value = try options.double("--knn-t") else { return nil }
    guard value > 0 else { throw UsageError("--knn-t must be a positive temperature, got \(value)") }
    return value
}
