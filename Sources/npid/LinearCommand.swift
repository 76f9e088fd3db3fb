import Foundation
import NPID
import Torch

/// `npid linear`: linear-probe accuracy of a checkpoint's frozen features.
enum LinearCommand {
    static let defaults = LinearProbe.defaults

    static let specs: [OptionSpec] = [
        OptionSpec("--checkpoint", value: "FILE", help: "checkpoint.safetensors written by npid train"),
    ] + DataOptions.specs + [
        OptionSpec("--layer", value: "NAME", help: "pooled (backbone output before the projection) or embedding (the D-dim feature kNN uses) (default pooled)"),
        OptionSpec("--epochs", value: "N", help: "passes over the training features (default \(defaults.epochs))"),
        OptionSpec("--lr", value: "LR", help: "base learning rate, decayed to 0 by a cosine schedule (default \(defaults.learningRate))"),
        OptionSpec("-b", "--batch-size", value: "B", help: "features per SGD step (default \(defaults.batchSize))"),
        OptionSpec("--momentum", value: "M", help: "SGD momentum (default \(defaults.momentum))"),
        OptionSpec("--weight-decay", value: "W", help: "L2 penalty on the classifier (default \(defaults.weightDecay))"),
        OptionSpec("--limit-per-class", value: "N", help: "training images per class (default: the run's)"),
        OptionSpec("--test-limit-per-class", value: "N", help: "test images per class (default: the run's)"),
        OptionSpec("--seed", value: "S", help: "seed of the shuffle (default \(defaults.seed))"),
    ] + networkRuntimeSpecs

    static let help = helpText(
        usage: "npid linear --checkpoint FILE (--data ROOT | --train-dir DIR --test-dir DIR) [options]",
        summary: """
        Trains a linear classifier (softmax regression, SGD with momentum, cosine schedule) on
        the frozen features of a checkpoint and reports top-1 and top-5 accuracy on the test
        split, and per class. Features are computed once without augmentation and
        standardised with the training split's statistics.
        """,
        specs: specs)

    static func run(_ arguments: [String]) throws {
        let options = try ParsedOptions(arguments, specs: specs, command: "linear")
        let checkpointPath = try options.requiredString("--checkpoint")
        var probe = defaults
        if let value = try options.int("--epochs") { probe.epochs = value }
        if let value = try options.double("--lr") { probe.learningRate = value }
        if let value = try options.int("--batch-size") { probe.batchSize = value }
        if let value = try options.double("--momentum") { probe.momentum = value }
        if let value = try options.double("--weight-decay") { probe.weightDecay = value }
        if options.has("--seed") { probe.seed = try seedOption(options) }
        try probe.validate()
        let layer = try featureLayerOption(options, default: .pooled)
        let dataRequest = try DataOptions.request(options, command: "linear")
        let runtime = try runtimeOptions(options)
        try requireFile(checkpointPath, flag: "--checkpoint")

        let model = try TrainedModel(checkpointPath: checkpointPath, runtime: runtime)
        let trainLimit = try limit(options, "--limit-per-class") ?? model.configuration.limitPerClass
        let testLimit = try limit(options, "--test-limit-per-class") ?? model.configuration.testLimitPerClass
        let data = try DataOptions.load(dataRequest, limitPerClass: trainLimit, testLimitPerClass: testLimit)
        try model.checkClasses(of: data)

        let started = Date()
        let trainFeatures = try model.features(of: data.train, layer: layer)
        let testFeatures = try model.features(of: data.test, layer: layer)
        Console.log(String(format: "%@ features (%d-d) of %d training and %d test images computed in %.1f s",
                           layer.rawValue, trainFeatures.shape[1], data.train.count, data.test.count,
                           Date().timeIntervalSince(started)))

        let classCount = data.classNames.count
        let classifier = try probe.fit(features: trainFeatures, labels: data.train.labels, classCount: classCount) { epoch, loss in
            // About ten progress lines whatever the number of epochs.
            if epoch == probe.epochs || epoch % max(1, probe.epochs / 10) == 0 {
                Console.log(String(format: "epoch %d/%d loss %.4f", epoch, probe.epochs, loss))
            }
        }
        let train = try classifier.accuracy(features: trainFeatures, labels: data.train.labels, classCount: classCount)
        let test = try classifier.accuracy(features: testFeatures, labels: data.test.labels, classCount: classCount)

        Console.output(String(format: "linear top-1 %.2f%%  top-5 %.2f%%  (%@ features, %d %@, %d test images; training top-1 %.2f%%)",
                              test.top1, test.top5, layer.rawValue, probe.epochs, probe.epochs == 1 ? "epoch" : "epochs",
                              test.count, train.top1))
        noteTopFiveCoversEveryClass(classCount: classCount)
        let width = max(data.classNames.map(\.count).max() ?? 5, 5)
        for (name, top1) in zip(data.classNames, test.perClassTop1) {
            let padded = name.padding(toLength: width, withPad: " ", startingAt: 0)
            Console.output("  \(padded)  " + (top1.map { String(format: "%6.2f%%", $0) } ?? "   n/a"))
        }
    }

    /// Reads an optional per-class limit, which must be at least 1.
    static func limit(_ options: ParsedOptions, _ flag: String) throws -> Int? {
        guard let value = try options.int(flag) else { return nil }
        guard value >= 1 else { throw UsageError("\(flag) must be at least 1, got \(value)") }
        return value
    }
}
