import Foundation
import NPID
import Torch

// npid: the command-line front end. Usage errors exit with 2, failures with 1.

let usage = """
usage: npid <command> [options]

Learns image features without labels by non-parametric instance discrimination
(Wu et al., CVPR 2018) and judges them with a weighted kNN classifier.

commands:
  train       train on an image folder, reporting kNN accuracy every epoch
  eval        kNN accuracy of a checkpoint on the test split
  neighbors   picture of test images next to their nearest training images
  check-data  decode every image of a folder and report classes, sizes and bad files
  linear      linear-probe accuracy of a checkpoint's frozen features
  embed       features of every image of a folder, saved as safetensors
  search      training images most similar to any image files
  report      write a run folder's HTML report
  bench       measure speed as JSON: --loader, --train, --eval or --knn (npid bench --help)
  version     print the versions of npid and libtorch

Run npid <command> --help for the options of a command.
"""

/// Each command's help, options and entry point. bench lists no options here, because each of its
/// modes has its own (`BenchCommand.modes`).
let commands: [String: (help: String, specs: [OptionSpec], run: ([String]) throws -> Void)] = [
    "train": (TrainCommand.help, TrainCommand.specs, TrainCommand.run),
    "eval": (EvalCommand.help, EvalCommand.specs, EvalCommand.run),
    "neighbors": (NeighborsCommand.help, NeighborsCommand.specs, NeighborsCommand.run),
    "check-data": (CheckDataCommand.help, CheckDataCommand.specs, CheckDataCommand.run),
    "linear": (LinearCommand.help, LinearCommand.specs, LinearCommand.run),
    "embed": (EmbedCommand.help, EmbedCommand.specs, EmbedCommand.run),
    "search": (SearchCommand.help, SearchCommand.specs, SearchCommand.run),
    "report": (ReportCommand.help, ReportCommand.specs, ReportCommand.run),
    "bench": (BenchCommand.help, [], BenchCommand.run),
]

let arguments = Array(CommandLine.arguments.dropFirst())
guard let name = arguments.first else {
    FileHandle.standardError.write(Data((usage + "\n").utf8))
    exit(2)
}
if name == "help", arguments.count > 1 {
    // `npid help COMMAND` prints what `npid COMMAND --help` prints.
    let topic = arguments[1]
    if topic == "version" {
        print("usage: npid version\n\nPrints the versions of npid and libtorch.")
        exit(0)
    }
    guard let command = commands[topic], arguments.count == 2 else {
        Console.error("npid help takes one command name, got '\(arguments.dropFirst().joined(separator: " "))'; run npid --help to list the commands")
        exit(2)
    }
    print(command.help)
    exit(0)
}
if name == "-h" || name == "--help" || name == "help" {
    print(usage)
    exit(0)
}
if name == "version" || name == "--version" {
    print("npid 0.1.0 (libtorch \(Torch.version))")
    exit(0)
}
guard let command = commands[name] else {
    Console.error("unknown command '\(name)'; run npid --help to list the commands")
    exit(2)
}
let rest = Array(arguments.dropFirst())
if rest.contains("-h") || rest.contains("--help") {
    print(command.help)
    exit(0)
}

do {
    try command.run(rest)
} catch let error as UsageError {
    Console.error(error.message)
    exit(2)
} catch let error as DataError {
    Console.error(error.description)
    exit(error.isUsageError ? 2 : 1)
} catch let error as TorchError where error.isOutOfMemory {
    let specs = name == "bench" ? BenchCommand.modes.filter { rest.contains($0.flag) }.flatMap(\.specs) : command.specs
    Console.error(error.outOfMemoryDescription(acceptedOptions: Set(specs.flatMap(\.names))))
    exit(1)
} catch {
    Console.error(String(describing: error))
    exit(1)
}

extension TorchError {
    /// True for libtorch's report of a failed CPU or CUDA allocation.
    var isOutOfMemory: Bool {
        message.contains("DefaultCPUAllocator: can't allocate memory") || message.contains("CUDA out of memory")
    }

    /// Returns one sentence in place of libtorch's allocator text, with the size it requested. Of the
    /// options that size the batch, the network or the memory bank, the sentence names only those in
    /// `acceptedOptions`, the failed command's option spellings, because eval and others take none.
    func outOfMemoryDescription(acceptedOptions: Set<String>) -> String {
        let bytes = message.range(of: #"allocate \d+ bytes"#, options: .regularExpression)
            .flatMap { Double(message[$0].dropFirst("allocate ".count).dropLast(" bytes".count)) }
        let size = bytes.map { $0 >= 1e9 ? String(format: " of %.1f GB", $0 / 1e9) : String(format: " of %.1f MB", $0 / 1e6) } ?? ""
        let failure = "out of memory: libtorch could not allocate a tensor\(size)"
        let sizingOptions = ["-b", "--width", "--low-dim", "--nce-k", "--bank"].filter(acceptedOptions.contains)
        guard !sizingOptions.isEmpty else {
            return failure + "; free memory, or run on a machine with more memory"
        }
        return failure + "; lower the options that size the batch, the network or the memory bank ("
            + sizingOptions.joined(separator: ", ") + "), or free memory"
    }
}

extension DataError {
    /// True for a data folder that is missing or laid out wrongly, because that is a bad
    /// --data argument (exit 2). An unreadable or corrupt file is a failure (exit 1).
    var isUsageError: Bool {
        switch self {
        case .missingFolder, .noClassFolders, .emptyClassFolders, .noImages, .missingCIFARFiles: return true
        default: return false
        }
    }
}
