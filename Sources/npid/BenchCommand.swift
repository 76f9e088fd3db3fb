import Foundation
import NPID

/// `npid bench`: micro-benchmarks. Each mode is one flag with its own options and prints
/// one JSON object on standard output.
enum BenchCommand {
    static let modes: [(flag: String, summary: String, specs: [OptionSpec], run: @Sendable ([String]) throws -> Void)] = [
        ("--loader", "the batch loader alone on a training split, with the full training augmentation "
            + "(compare with npid train --bench-steps N)", LoaderBench.specs, LoaderBench.run),
        ("--train", "training images/s of one configuration, with the loader or with --synthetic batches, "
            + "and the peak memory", TrainBench.trainSpecs, TrainBench.runTrain),
        ("--eval", "one kNN evaluation of an untrained network against a random memory bank of the training "
            + "split's size: test features, then the vote", TrainBench.evalSpecs, TrainBench.runEval),
        ("--knn", "weighted kNN of random unit queries against a random unit bank, in bounded memory",
         KNNBench.specs, KNNBench.run),
    ]

    static var help: String {
        var text = ["usage: npid bench MODE [options]", "", "Measures one part of npid and prints the figures as JSON. Modes:"]
        for mode in modes {
            text.append("  \(mode.flag)  \(mode.summary)")
            text.append(helpText(usage: "npid bench \(mode.flag) [options]", summary: "", specs: mode.specs)
                .split(separator: "\n", omittingEmptySubsequences: false).dropFirst(3)
                .map { "  " + $0 }.joined(separator: "\n"))
        }
        return text.joined(separator: "\n")
    }

    static func run(_ arguments: [String]) throws {
        let chosen = modes.filter { arguments.contains($0.flag) }
        guard chosen.count == 1 else {
            throw UsageError("npid bench needs exactly one mode, one of \(modes.map(\.flag).joined(separator: ", ")); run npid bench --help for the options")
        }
        try chosen[0].run(arguments.filter { $0 != chosen[0].flag })
    }
}
