#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import NPID

/// A checkpoint save that fails or is killed half-way must leave the previous checkpoint whole
/// and loadable, and the run must resume from it to the same result as a run that never failed.
///
/// Each test trains one epoch, then resumes for a second under a fault. A file size limit set
/// with prlimit (util-linux) either fails the write with EFBIG or kills the process with
/// SIGXFSZ in the middle of it, and a tmpfs is too small for a second checkpoint. The disposition
/// of SIGXFSZ is set explicitly with `env --ignore-signal` or `--default-signal` (coreutils
/// 8.31 or later), because the test process may pass on an ignored one.
@Suite struct CLISaveFailureTests {
    static let prlimit = "/usr/bin/prlimit"
    /// A quarter of the 1.4 MB checkpoint of the small model, and far above config.json and metrics.jsonl.
    static let fileSizeLimit = 256 * 1024

    /// Trains epoch 1 into `runDirectory` and returns the bytes of its checkpoint.
    static func trainFirstEpoch(_ dataset: CLIDataset, runDirectory: String, in folder: String) async throws -> [UInt8] {
        let first = try await CLI.run(["train", "--data", dataset.root, "--run-dir", runDirectory, "--epochs", "1"]
                                          + CLIRuns.smallModelFlags,
                                      in: folder)
        first.expectSuccess()
        return try CLIFiles.bytes(runDirectory + "/checkpoint.safetensors")
    }

    static func resumeArguments(_ dataset: CLIDataset, _ runDirectory: String) -> [String] {
        ["train", "--data", dataset.root, "--resume", runDirectory, "--epochs", "2", "--workers", "0", "--threads", "1"]
    }

    /// Checks that the run folder still contains epoch 1's checkpoint, whole.
    static func expectPreviousCheckpoint(_ runDirectory: String, bytes: [UInt8],
                                         sourceLocation: SourceLocation = #_sourceLocation) throws {
        let path = runDirectory + "/checkpoint.safetensors"
        #expect(try CLIFiles.bytes(path) == bytes, "the previous checkpoint changed", sourceLocation: sourceLocation)
        #expect(try Checkpoint.read(contentsOf: path).epochsDone == 1, sourceLocation: sourceLocation)
        #expect(try CLIRunFolder.names(runDirectory).filter { $0.hasPrefix("checkpoint") }
                == ["checkpoint-epoch1.safetensors", "checkpoint.safetensors"], sourceLocation: sourceLocation)
    }

    /// Resumes without the fault and checks that the run ends as the shared two-epoch run does.
    static func expectResumeMatchesStraightRun(_ dataset: CLIDataset, _ runDirectory: String, in folder: String,
                                               sourceLocation: SourceLocation = #_sourceLocation) async throws -> CLIResult {
        let straight = try await CLIRuns.twoEpochs.value
        let resumed = try await CLI.run(resumeArguments(dataset, runDirectory), in: folder)
        resumed.expectSuccess(sourceLocation: sourceLocation)
        try CLIRunFolder.expectSameMetrics(runDirectory + "/metrics.jsonl", as: straight.metricsPath,
                                           sourceLocation: sourceLocation)
        #expect(try CLIFiles.bytes(runDirectory + "/checkpoint.safetensors") == CLIFiles.bytes(straight.checkpointPath),
                sourceLocation: sourceLocation)
        #expect(try CLIRunFolder.temporaryNames(runDirectory) == [], sourceLocation: sourceLocation)
        return resumed
    }

    static var hasPrlimit: Bool {
        let present = FileManager.default.isExecutableFile(atPath: prlimit)
        if !present {
            print("CLISaveFailureTests: \(prlimit) (util-linux) is missing, so the file size limit tests cannot run")
        }
        return present
    }

    @Test(.enabled(if: hasPrlimit, "needs prlimit from util-linux"))
    func failedSaveKeepsPreviousCheckpoint() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"
        let previous = try await Self.trainFirstEpoch(dataset, runDirectory: runDirectory, in: scratch.path)

        // With SIGXFSZ ignored, a write past the limit fails with EFBIG, as a full disk fails with ENOSPC.
        let launcher = ["/usr/bin/env", "--ignore-signal=XFSZ", Self.prlimit, "--fsize=\(Self.fileSizeLimit)",
                        "--core=0", "--"]
        let process = try CLIProcess(Self.resumeArguments(dataset, runDirectory), in: scratch.path, launcher: launcher)
        let failed = try await process.finish()

        #expect(!failed.timedOut)
        #expect(failed.status == 1, "stderr: \(failed.stderr)")
        #expect(failed.stdout == "")
        #expect(failed.errorLines.count == 1)
        let error = failed.errorLines.first ?? ""
        #expect(error.hasPrefix("npid: error: failed to write \(runDirectory)/.checkpoint-epoch2.safetensors.tmp-"),
                "stderr: \(failed.stderr)")
        #expect(error.hasSuffix(": File too large (the file would exceed the file size limit of the process (ulimit -f) or of the file system)"),
                "stderr: \(failed.stderr)")
        try Self.expectPreviousCheckpoint(runDirectory, bytes: previous)
        #expect(try CLIRunFolder.temporaryNames(runDirectory) == [], "the failed write left its temporary file")

        _ = try await Self.expectResumeMatchesStraightRun(dataset, runDirectory, in: scratch.path)
    }

    @Test(.enabled(if: hasPrlimit, "needs prlimit from util-linux"))
    func killDuringSaveKeepsPreviousCheckpoint() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"
        let previous = try await Self.trainFirstEpoch(dataset, runDirectory: runDirectory, in: scratch.path)

        // SIGXFSZ's default action ends the process at the write that crosses the limit.
        let launcher = ["/usr/bin/env", "--default-signal=XFSZ", Self.prlimit, "--fsize=\(Self.fileSizeLimit)",
                        "--core=0", "--"]
        let process = try CLIProcess(Self.resumeArguments(dataset, runDirectory), in: scratch.path, launcher: launcher)
        let killed = try await process.finish()

        #expect(!killed.timedOut)
        #expect(killed.status == 128 + SIGXFSZ, "stderr: \(killed.stderr)")
        try Self.expectPreviousCheckpoint(runDirectory, bytes: previous)
        let leftOver = try CLIRunFolder.temporaryNames(runDirectory)
        #expect(leftOver.count == 1, "temporary files: \(leftOver)")
        #expect(leftOver.first?.hasPrefix(".checkpoint-epoch2.safetensors.tmp-") == true)
        let leftOverSize = try FileManager.default.attributesOfItem(atPath: runDirectory + "/" + (leftOver.first ?? ""))[.size] as? Int
        #expect(leftOverSize == Self.fileSizeLimit, "the save was not cut at the limit")

        let resumed = try await Self.expectResumeMatchesStraightRun(dataset, runDirectory, in: scratch.path)
        #expect(resumed.stderrLines.contains("removed 1 unfinished temporary file that an interrupted save left in \(runDirectory): \(leftOver.first ?? "")"),
                "stderr: \(resumed.stderr)")
    }

    @Test func fullDiskKeepsPreviousCheckpoint() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let disk = try scratch.makeFolder("disk")
        let checkpointSize = try CLIFiles.bytes(try await CLIRuns.twoEpochs.value.checkpointPath).count
        // Room for one checkpoint and the small files, not for a second checkpoint.
        let options = "size=\(checkpointSize / 1024 + 512)k"
        guard mount("tmpfs", disk, "tmpfs", 0, options) == 0 else {
            let reason = String(cString: strerror(errno))
            print("fullDiskKeepsPreviousCheckpoint: cannot mount a tmpfs at \(disk) (\(reason)); it needs root with CAP_SYS_ADMIN, so the full-disk case is not tested here")
            return
        }
        defer { umount2(disk, Int32(MNT_DETACH)) }
        let runDirectory = disk + "/run"
        let previous = try await Self.trainFirstEpoch(dataset, runDirectory: runDirectory, in: scratch.path)

        let failed = try await CLI.run(Self.resumeArguments(dataset, runDirectory), in: scratch.path)

        #expect(!failed.timedOut)
        #expect(failed.status == 1, "stderr: \(failed.stderr)")
        #expect(failed.errorLines.count == 1)
        let error = failed.errorLines.first ?? ""
        #expect(error.hasPrefix("npid: error: failed to write \(runDirectory)/.checkpoint-epoch2.safetensors.tmp-"),
                "stderr: \(failed.stderr)")
        #expect(error.hasSuffix(": No space left on device (free some disk space and try again)"), "stderr: \(failed.stderr)")
        try Self.expectPreviousCheckpoint(runDirectory, bytes: previous)
        #expect(try CLIRunFolder.temporaryNames(runDirectory) == [], "the failed write left its temporary file")
    }
}
