import Foundation
import Testing

/// Help, version, commands and option values of `npid`, run as a separate process.
@Suite struct CLIUsageTests {
    // MARK: Help and version

    @Test func noArgumentsPrintsUsage() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run([], in: scratch.path)

        #expect(result.status == 2)
        #expect(result.stdout == "")
        #expect(result.stderr.hasPrefix("usage: npid <command> [options]\n"))
        for command in ["train", "eval", "neighbors", "check-data", "bench", "version"] {
            #expect(result.stderrLines.contains { $0.hasPrefix("  \(command) ") }, "missing command \(command)")
        }
    }

    @Test func topLevelHelpListsCommands() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["--help"], in: scratch.path)

        result.expectSuccess()
        #expect(result.stderr == "")
        #expect(result.stdout.hasPrefix("usage: npid <command> [options]\n"))
        for command in ["train", "eval", "neighbors", "check-data", "bench", "version"] {
            #expect(result.stdoutLines.contains { $0.hasPrefix("  \(command) ") }, "missing command \(command)")
        }
        let benchLine = result.stdoutLines.first { $0.hasPrefix("  bench ") } ?? ""
        for mode in ["--loader", "--train", "--eval", "--knn"] {
            #expect(benchLine.contains(mode), "the bench line does not name \(mode): \(benchLine)")
        }
    }

    @Test func helpCommandPrintsCommandHelp() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let viaHelp = try await CLI.run(["help", "linear"], in: scratch.path)
        let viaFlag = try await CLI.run(["linear", "--help"], in: scratch.path)
        let version = try await CLI.run(["help", "version"], in: scratch.path)
        let unknown = try await CLI.run(["help", "trian"], in: scratch.path)

        viaHelp.expectSuccess()
        #expect(viaHelp.stdout.hasPrefix("usage: npid linear --checkpoint FILE"), "stdout: \(viaHelp.stdout)")
        #expect(viaHelp.stdout == viaFlag.stdout)
        version.expectSuccess()
        #expect(version.stdout.hasPrefix("usage: npid version\n"), "stdout: \(version.stdout)")
        unknown.expectRejected(status: 2, message: "npid help takes one command name, got 'trian'; run npid --help to list the commands")
    }

    /// A subcommand, the first line of its help and the option labels the help must list.
    struct SubcommandHelp: Sendable, CustomTestStringConvertible {
        let command: String
        let usageLine: String
        let flags: [String]

        var testDescription: String { command }
    }

    static let subcommandHelps = [
        SubcommandHelp(command: "train", usageLine: "usage: npid train --data ROOT [--run-dir DIR] [options]",
                       flags: ["--data ROOT", "--run-dir DIR", "--resume RUN_DIR", "--epochs N", "--limit-per-class N",
                               "--arch NAME", "--width W", "--low-dim D", "--nce-k K", "--nce-t T", "--nce-m M",
                               "--loss NAME", "--nce-z MODE", "--nce-z-rate R", "--proximal LAMBDA",
                               "--lr LR", "-b, --batch-size B", "--knn-k K", "--seed S", "--device DEV",
                               "--threads N", "--workers N", "--eval-untrained", "--bench-steps N", "--keep-checkpoints N", "--dataset NAME",
                               "--train-dir DIR", "--test-dir DIR", "--download", "--on-bad-image POLICY", "--cache-mb MB",
                               "--image-size S", "--stem NAME", "-h, --help"]),
        SubcommandHelp(command: "eval", usageLine: "usage: npid eval --checkpoint FILE --data ROOT [--recompute]",
                       flags: ["--checkpoint FILE", "--data ROOT", "--recompute", "--knn-k K", "--knn-t T", "--device DEV",
                               "-h, --help"]),
        SubcommandHelp(command: "neighbors", usageLine: "usage: npid neighbors --checkpoint FILE --data ROOT --out FILE.png",
                       flags: ["--checkpoint FILE", "--data ROOT", "--out FILE.png", "--queries LIST", "--rows N",
                               "--failures", "--seed S", "--neighbors N", "--recompute", "--device DEV", "-h, --help"]),
        SubcommandHelp(command: "check-data", usageLine: "usage: npid check-data ROOT",
                       flags: ["--threads N", "-h, --help"]),
        // Each mode's options follow its line, indented further.
        SubcommandHelp(command: "bench", usageLine: "usage: npid bench MODE [options]",
                       flags: ["--loader", "--train", "--eval", "--knn"]),
    ]

    @Test(arguments: subcommandHelps)
    func subcommandHelpListsFlags(_ help: SubcommandHelp) async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run([help.command, "--help"], in: scratch.path)

        result.expectSuccess()
        #expect(result.stderr == "")
        #expect(result.stdoutLines.first == help.usageLine)
        for flag in help.flags {
            #expect(result.stdoutLines.contains { $0.hasPrefix("  " + flag + " ") }, "no help line for \(flag)")
        }
    }

    /// The --nproc launcher turns SIGHUP into SIGTERM, and the help must not promise 129 there.
    @Test func trainHelpNamesHangupStatusUnderLauncher() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["train", "--help"], in: scratch.path)

        result.expectSuccess()
        let text = result.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(text.contains("exits with 130, 143 or 129. With --nproc, the launcher passes SIGHUP on as SIGTERM, so the run exits with 143."),
                "stdout: \(result.stdout)")
    }

    @Test func versionNamesLibtorch() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["version"], in: scratch.path)

        result.expectSuccess()
        #expect(result.stderr == "")
        #expect(result.stdoutLines.count == 1)
        #expect(result.stdout.hasPrefix("npid "))
        #expect(result.stdout.hasSuffix(" (libtorch 2.11.0)\n"))
    }

    // MARK: Commands and options

    @Test func unknownCommandIsRejected() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["trian", "--data", "x"], in: scratch.path)

        result.expectRejected(status: 2, message: "unknown command 'trian'; run npid --help to list the commands")
    }

    /// One invalid `npid train` flag on top of an otherwise valid tiny run.
    struct InvalidTrainFlag: Sendable, CustomTestStringConvertible {
        let flags: [String]
        let message: String

        var testDescription: String { flags.joined(separator: " ") }
    }

    static let invalidTrainFlags: [InvalidTrainFlag] = [
        InvalidTrainFlag(flags: ["--epoch", "3"],
                         message: "unknown option --epoch for npid train; run npid train --help to list the options"),
        InvalidTrainFlag(flags: ["--eval-untrained=yes"], message: "option --eval-untrained takes no value, got 'yes'"),
        InvalidTrainFlag(flags: ["--epochs"], message: "option --epochs needs a value (N)"),
        InvalidTrainFlag(flags: ["--epochs", "abc"], message: "--epochs expects a whole number, got 'abc'"),
        InvalidTrainFlag(flags: ["--epochs", "0"], message: "--epochs must be at least 1, got 0"),
        InvalidTrainFlag(flags: ["--nce-k", "-1"],
                         message: "--nce-k must be 0 (full softmax) or a positive number of noise samples, got -1"),
        InvalidTrainFlag(flags: ["--nce-t", "0"], message: "--nce-t must be a positive temperature, got 0.0"),
        InvalidTrainFlag(flags: ["--nce-t", "-0.5"], message: "--nce-t must be a positive temperature, got -0.5"),
        InvalidTrainFlag(flags: ["--nce-t", "nan"], message: "--nce-t expects a number, got 'nan'"),
        InvalidTrainFlag(flags: ["--nce-m", "1"], message: "--nce-m must be in [0, 1), got 1.0"),
        InvalidTrainFlag(flags: ["--nce-m", "-0.1"], message: "--nce-m must be in [0, 1), got -0.1"),
        InvalidTrainFlag(flags: ["--lr", "-0.1"], message: "--lr must be a positive number, got -0.1"),
        InvalidTrainFlag(flags: ["--momentum", "1"], message: "--momentum must be in [0, 1), got 1.0"),
        InvalidTrainFlag(flags: ["--weight-decay", "-1e-4"], message: "--weight-decay must be 0 or more, got -0.0001"),
        InvalidTrainFlag(flags: ["--lr", "1e300"], message: "--lr 1e+300 is beyond float32's range (3.4e38); pass a rate such as 0.03"),
        InvalidTrainFlag(flags: ["-b", "0"], message: "--batch-size must be at least 1, got 0"),
        InvalidTrainFlag(flags: ["--batch-size", "0"], message: "--batch-size must be at least 1, got 0"),
        InvalidTrainFlag(flags: ["--batch-size", "-4"], message: "--batch-size must be at least 1, got -4"),
        InvalidTrainFlag(flags: ["--knn-k", "0"], message: "--knn-k must be at least 1, got 0"),
        InvalidTrainFlag(flags: ["--knn-k", "-3"], message: "--knn-k must be at least 1, got -3"),
        InvalidTrainFlag(flags: ["--width", "0"], message: "--width must be at least 1, got 0"),
        InvalidTrainFlag(flags: ["--low-dim", "0"], message: "--low-dim must be at least 1, got 0"),
        InvalidTrainFlag(flags: ["--limit-per-class", "0"], message: "--limit-per-class must be at least 1, got 0"),
        InvalidTrainFlag(flags: ["--seed", "-1"],
                         message: "--seed expects a whole number from 0 to 18446744073709551615, got '-1'"),
        InvalidTrainFlag(flags: ["--arch", "resnet99"],
                         message: "unknown --arch 'resnet99'; choose one of resnet18, resnet34, resnet50"),
        InvalidTrainFlag(flags: ["--schedule", "linear"], message: "unknown --schedule 'linear'; choose step or cosine"),
        InvalidTrainFlag(flags: ["--device", "tpu"], message: "unknown --device 'tpu'; use cpu, cuda or cuda:N"),
        InvalidTrainFlag(flags: ["--loss", "infonce"], message: "unknown --loss 'infonce'; choose one of nce, softmax-ce"),
        InvalidTrainFlag(flags: ["--nce-z", "moving"], message: "unknown --nce-z 'moving'; choose one of fixed, momentum"),
        InvalidTrainFlag(flags: ["--nce-z", "momentum", "--nce-z-rate", "0"], message: "--nce-z-rate must be in (0, 1], got 0.0"),
        InvalidTrainFlag(flags: ["--nce-z-rate", "0.1"],
                         message: "--nce-z-rate sets the rate of --nce-z momentum; add --nce-z momentum or drop --nce-z-rate"),
        InvalidTrainFlag(flags: ["--nce-z", "momentum", "--loss", "softmax-ce"],
                         message: "--nce-z momentum applies only to NCE; use it with --loss nce and --nce-k above 0, or drop it"),
        InvalidTrainFlag(flags: ["--proximal", "-1"], message: "--proximal must be 0 (off) or a positive weight, got -1.0"),
        InvalidTrainFlag(flags: ["--threads", "0"], message: "--threads must be at least 1, got 0"),
        InvalidTrainFlag(flags: ["--workers", "-1"], message: "--workers must be 0 or more, got -1"),
        InvalidTrainFlag(flags: ["--keep-checkpoints", "0"], message: "--keep-checkpoints must be at least 1, got 0"),
        InvalidTrainFlag(flags: ["--rank", "1"],
                         message: "--rank 1 needs --world-size 2 or more (or WORLD_SIZE); pass --world-size as well, or use --nproc to start the ranks"),
    ]

    @Test(arguments: invalidTrainFlags)
    func trainRejectsInvalidFlag(_ invalid: InvalidTrainFlag) async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"

        // The invalid flag comes last, so it overrides the valid value of the same flag.
        let arguments = ["train", "--data", dataset.root, "--run-dir", runDirectory, "--epochs", "1"]
            + CLIRuns.smallModelFlags + invalid.flags
        let result = try await CLI.run(arguments, in: scratch.path)

        result.expectRejected(status: 2, message: invalid.message)
        #expect(!FileManager.default.fileExists(atPath: runDirectory), "npid created the run folder")
    }

    /// An empty path value or argument, as an unset shell variable gives it, on each command.
    struct EmptyPath: Sendable, CustomTestStringConvertible {
        let arguments: [String]
        let message: String

        var testDescription: String { arguments.map { $0.isEmpty ? "''" : $0 }.joined(separator: " ") }
    }

    static let emptyPaths: [EmptyPath] = [
        EmptyPath(arguments: ["neighbors", "--checkpoint", "c.safetensors", "--data", "d", "--out", ""],
                  message: "--out is empty; pass a file name ending in .png"),
        EmptyPath(arguments: ["search", "--checkpoint", "c.safetensors", "--data", "d", "--out=", "q.jpg"],
                  message: "--out is empty; pass a file name ending in .png"),
        EmptyPath(arguments: ["train", "--data", "d", "--run-dir", ""], message: "--run-dir is empty; pass a folder path"),
        EmptyPath(arguments: ["train", "--data", ""], message: "--data is empty; pass a folder path"),
        EmptyPath(arguments: ["train", "--data", "d", "--resume", ""], message: "--resume is empty; pass a folder path"),
        EmptyPath(arguments: ["train", "--train-dir", "", "--test-dir", "t"], message: "--train-dir is empty; pass a folder path"),
        EmptyPath(arguments: ["eval", "--checkpoint", "", "--data", "d"], message: "--checkpoint is empty; pass a file path"),
        EmptyPath(arguments: ["embed", "--checkpoint", "c.safetensors", "--images", "", "--out", "e.safetensors"],
                  message: "--images is empty; pass a folder path"),
        EmptyPath(arguments: ["embed", "--checkpoint", "c.safetensors", "--images", "i", "--out", ""],
                  message: "--out is empty; pass a file path"),
        EmptyPath(arguments: ["search", "--checkpoint", "c.safetensors", "--index", "", "q.jpg"],
                  message: "--index is empty; pass a file path"),
        EmptyPath(arguments: ["search", "--checkpoint", "c.safetensors", "--data", "d", ""],
                  message: "empty argument '' for npid search; pass a path or remove the argument"),
        EmptyPath(arguments: ["report", ""], message: "empty argument '' for npid report; pass a path or remove the argument"),
        EmptyPath(arguments: ["check-data", ""],
                  message: "empty argument '' for npid check-data; pass a path or remove the argument"),
    ]

    @Test(arguments: emptyPaths)
    func emptyPathIsRejected(_ empty: EmptyPath) async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(empty.arguments, in: scratch.path)

        result.expectRejected(status: 2, message: empty.message)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path) == [], "npid wrote into its folder")
    }

    @Test func benchStepsZeroRejectedBeforeDecoding() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"

        let result = try await CLI.run(["train", "--data", dataset.root, "--run-dir", runDirectory, "--bench-steps", "0"]
                                           + CLIRuns.smallModelFlags,
                                       in: scratch.path)

        // Like every other flag value, it is checked before the images are decoded, so stderr
        // contains the error and no "decoded ... images" progress line.
        result.expectRejected(status: 2, message: "--bench-steps must be at least 1, got 0")
        #expect(!FileManager.default.fileExists(atPath: runDirectory))
    }

    @Test func trainWithoutDataIsRejected() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"

        let result = try await CLI.run(["train", "--run-dir", runDirectory, "--epochs", "1"] + CLIRuns.smallModelFlags,
                                       in: scratch.path)

        result.expectRejected(status: 2, message: "npid train needs --data; run npid train --help for an example")
        #expect(!FileManager.default.fileExists(atPath: runDirectory))
    }

    @Test func evalWithoutCheckpointIsRejected() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["eval", "--data", dataset.root], in: scratch.path)

        result.expectRejected(status: 2, message: "npid eval needs --checkpoint; run npid eval --help for an example")
    }

    @Test func neighborsWithoutOutIsRejected() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["neighbors", "--checkpoint", run.checkpointPath, "--data", run.dataset.root],
                                       in: scratch.path)

        result.expectRejected(status: 2, message: "npid neighbors needs --out; run npid neighbors --help for an example")
    }

    @Test func neighborsRejectsZeroRows() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let picture = scratch.path + "/neighbors.png"

        let result = try await CLI.run(["neighbors", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                        "--out", picture, "--rows", "0"],
                                       in: scratch.path)

        result.expectRejected(status: 2, message: "--rows must be at least 1, got 0")
        #expect(!FileManager.default.fileExists(atPath: picture))
    }

    // MARK: GPU

    /// True when the NVIDIA driver exposes a device, so `--device cuda` may legitimately work.
    static let hasNVIDIADevice = FileManager.default.fileExists(atPath: "/dev/nvidia0")

    @Test(.enabled(if: !hasNVIDIADevice, "this machine has an NVIDIA device, so --device cuda may succeed"))
    func cudaWithoutGPUFailsClearly() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"
        let executableFolder = try #require(CLI.executablePath.map { ($0 as NSString).deletingLastPathComponent })

        let result = try await CLI.run(["train", "--data", dataset.root, "--run-dir", runDirectory, "--epochs", "1",
                                        "--device", "cuda"] + CLIRuns.smallModelFlags,
                                       in: scratch.path)

        // A missing GPU is a failure of the machine, not of the command line.
        #expect(result.status == 1, "stderr: \(result.stderr)")
        #expect(result.stdout == "")
        #expect(result.stderrLines.count == 1)
        #expect(result.errorLines.count == 1)
        #expect(!result.stderr.contains("Exception raised from"), "C++ backtrace on stderr")
        #expect(!result.stderr.contains("frame #"), "C++ backtrace on stderr")
        // libtorch_cuda.so belongs beside the linked libtorch_cpu.so, never beside the npid executable.
        #expect(!result.stderr.contains(executableFolder + "/libtorch_cuda.so"), "stderr: \(result.stderr)")
        #expect(result.stderr.contains("--device cpu"), "the error should name the way out: \(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: runDirectory))
    }
}
