import Foundation
import Testing
@testable import NPID

/// `npid train --nproc 2` with a worker killed mid-run: the surviving rank and the launcher
/// exit 1 within --dist-timeout naming the lost rank, and --resume continues the run with a
/// different number of ranks.
@Suite struct CLIDataParallelTests {
    /// Batches of 2 per rank give 6 global steps per epoch on the 24 training images; the
    /// epochs are many so that the run is still training when the kill lands.
    static let flags = ["--width", "16", "--low-dim", "16", "-b", "2", "--nce-k", "16", "--knn-k", "5",
                        "--seed", "5", "--workers", "0", "--threads", "1", "--epochs", "50"]
    static let timeout = 20.0

    @Test func killedRankStopsRunAndResumes() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"

        let (process, pid) = try await Self.startTwoRanks(dataset: dataset, runDirectory: runDirectory,
                                                          timeout: Self.timeout, in: scratch.path)

        kill(pid, SIGKILL)
        let killedAt = Date()
        let stopped = try await process.finish()
        let seconds = Date().timeIntervalSince(killedAt)

        #expect(!stopped.timedOut)
        #expect(stopped.status == 1, "stderr: \(stopped.stderr)")
        #expect(seconds < Self.timeout, "the run took \(seconds) s to stop after the kill")
        let survivor = stopped.errorLines.first { $0.hasPrefix(CLI.errorPrefix + "rank 0: rank 1 stopped responding during ") }
        #expect(survivor != nil, "stderr: \(stopped.stderr)")
        #expect(survivor?.hasSuffix("continue from the last checkpoint with: npid train --data \(dataset.root) --resume \(runDirectory) --nproc 2 --threads 1 --workers 0 --dist-timeout 20") == true,
                "stderr: \(stopped.stderr)")
        #expect(stopped.stderrLines.contains { $0.hasPrefix("npid: rank 1 was lost: it was killed by signal 9 (pid \(pid))") },
                "stderr: \(stopped.stderr)")

        // The run continues from its last epoch-end checkpoint, here on one process.
        let saved = try Checkpoint.read(contentsOf: runDirectory + "/" + Checkpoint.fileName)
        #expect(saved.worldSize == 2)
        #expect(saved.epochsDone >= 1)
        let epochs = saved.epochsDone + 1
        let resumed = try await CLI.run(["train", "--data", dataset.root, "--resume", runDirectory, "--epochs", String(epochs),
                                         "--workers", "0", "--threads", "1"], in: scratch.path)
        resumed.expectSuccess()
        #expect(resumed.stderrLines.contains("resuming \(runDirectory) after epoch \(saved.epochsDone) of \(epochs)"),
                "stderr: \(resumed.stderr)")
        let final = try Checkpoint.read(contentsOf: runDirectory + "/" + Checkpoint.fileName)
        #expect(final.epochsDone == epochs)
        #expect(final.worldSize == 1)
        #expect(final.stepsDone == saved.stepsDone + 12, "one epoch alone takes 24 / 2 = 12 steps")
    }

    /// A rank lost before the first checkpoint leaves nothing to resume, so neither rank 0
    /// nor the launcher suggests --resume. --eval-untrained evaluates before the first step,
    /// which keeps the run far from its first checkpoint when the kill lands.
    @Test func rankLostBeforeCheckpointSaysStartAgain() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"

        let process = try CLIProcess(["train", "--data", dataset.root, "--run-dir", runDirectory, "--nproc", "2",
                                      "--dist-timeout", String(Int(Self.timeout)), "--eval-untrained"] + Self.flags,
                                     in: scratch.path)
        let training = try await process.waitForStderr(containing: "training on ")
        try #require(training, "training did not start; stderr: \(process.stderr)")
        let pid = try #require(Self.rankPID(process.stderr, rank: 1))
        kill(pid, SIGKILL)
        let stopped = try await process.finish()

        #expect(!FileManager.default.fileExists(atPath: runDirectory + "/" + Checkpoint.fileName),
                "a checkpoint was written before the kill landed; stderr: \(stopped.stderr)")
        #expect(!stopped.timedOut)
        #expect(stopped.status == 1, "stderr: \(stopped.stderr)")
        let survivor = stopped.errorLines.first { $0.hasPrefix(CLI.errorPrefix + "rank 0: rank 1 stopped responding during ") }
        #expect(survivor?.hasSuffix("the run cannot go on without it; no checkpoint was written, so start the run again once the cause is fixed") == true,
                "stderr: \(stopped.stderr)")
        #expect(stopped.stderrLines.contains { $0.hasPrefix("npid: rank 1 was lost: it was killed by signal 9 (pid \(pid))")
                    && $0.hasSuffix("No checkpoint was written, so start the run again once the cause is fixed.") },
                "stderr: \(stopped.stderr)")
        #expect(!stopped.stderr.contains("--resume"), "stderr: \(stopped.stderr)")
    }

    /// A rank that stops responding (SIGSTOP, as on a hung machine) makes rank 0 time out
    /// and name it. The launcher then ends the stopped worker.
    @Test func hungRankTimesOut() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let timeout = 5.0

        let (process, pid) = try await Self.startTwoRanks(dataset: dataset, runDirectory: scratch.path + "/run",
                                                          timeout: timeout, in: scratch.path)

        kill(pid, SIGSTOP)
        let stoppedAt = Date()
        let stopped = try await process.finish()
        let seconds = Date().timeIntervalSince(stoppedAt)
        kill(pid, SIGKILL)

        #expect(!stopped.timedOut)
        #expect(stopped.status == 1, "stderr: \(stopped.stderr)")
        // Rank 0 fails after one collective timeout and a 3 s check of which ranks respond. The
        // launcher kills the stopped rank timeout + 10 s after that. 10 s more for a loaded machine.
        #expect(seconds < timeout + 3 + (timeout + 10) + 10, "the run took \(seconds) s to stop after rank 1 hung")
        let survivor = stopped.errorLines.first { $0.hasPrefix(CLI.errorPrefix + "rank 0: rank 1 stopped responding during ") }
        #expect(survivor != nil, "stderr: \(stopped.stderr)")
        #expect(stopped.stderrLines.contains { $0.hasPrefix("npid: rank 0 failed (its error is above): it exited with status 1") },
                "stderr: \(stopped.stderr)")
    }

    /// A rank whose peers never start fails after --dist-timeout with one line of its own, no
    /// C++ stack traces from libtorch, and no advice to resume a run that has no checkpoint.
    @Test func loneRankFailsQuietly() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let port = try #require(Self.unusedPort())

        let result = try await CLI.run(["train", "--data", dataset.root, "--run-dir", scratch.path + "/run", "--nproc", "1",
                                        "--nnodes", "2", "--node-rank", "1", "--master-port", String(port),
                                        "--dist-timeout", "2"] + Self.flags, in: scratch.path)

        #expect(result.status == 1, "stderr: \(result.stderr)")
        #expect(result.errorLines.contains { $0.hasPrefix(CLI.errorPrefix + "rank 1 could not join the 2 ranks at 127.0.0.1:\(port) within --dist-timeout 2 s") },
                "stderr: \(result.stderr)")
        #expect(!result.stderr.contains("frame #"), "stderr: \(result.stderr)")
        #expect(result.stderrLines.contains { $0.hasSuffix("No checkpoint was written, so start the run again once the cause is fixed.") },
                "stderr: \(result.stderr)")
    }

    /// SIGHUP (a closed terminal) reaches the workers only through the launcher, which passes
    /// it on as SIGTERM: rank 0 saves a checkpoint and the run exits with 143.
    @Test func hangupStopsRanksWithCheckpoint() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"

        let (process, _) = try await Self.startTwoRanks(dataset: dataset, runDirectory: runDirectory,
                                                        timeout: Self.timeout, in: scratch.path)
        process.send(SIGHUP)
        let stopped = try await process.finish()

        #expect(!stopped.timedOut)
        #expect(stopped.status == 143, "stderr: \(stopped.stderr)")
        #expect(stopped.stderrLines.contains { $0.hasPrefix("npid: stopped by SIGTERM ") }, "stderr: \(stopped.stderr)")
        let saved = try Checkpoint.read(contentsOf: runDirectory + "/" + Checkpoint.fileName)
        #expect(saved.worldSize == 2)
        #expect(saved.epochsDone >= 1)
    }

    /// A signal sent to one rank directly, not through the launcher, stops the whole run:
    /// rank 0 reports that another rank asked, and the launcher exits as a stop, not a failure.
    @Test func signalToOneRankStopsRun() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"

        let (process, rank1) = try await Self.startTwoRanks(dataset: dataset, runDirectory: runDirectory,
                                                            timeout: Self.timeout, in: scratch.path)
        kill(rank1, SIGTERM)
        let stopped = try await process.finish()

        #expect(!stopped.timedOut)
        #expect(stopped.status == 143, "stderr: \(stopped.stderr)")
        #expect(stopped.stderrLines.contains { $0.hasPrefix("npid: stopped at another rank's request ") }, "stderr: \(stopped.stderr)")
        #expect(!stopped.stderrLines.contains { $0.hasPrefix("npid: rank ") && $0.contains(" failed") }, "stderr: \(stopped.stderr)")
        let saved = try Checkpoint.read(contentsOf: runDirectory + "/" + Checkpoint.fileName)
        #expect(saved.worldSize == 2)
    }

    /// Workers whose launcher is killed outright stop on their own as on SIGTERM, so no rank
    /// keeps training without a process that could stop it.
    @Test func killedLauncherStopsRanks() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let runDirectory = scratch.path + "/run"

        let (process, rank1) = try await Self.startTwoRanks(dataset: dataset, runDirectory: runDirectory,
                                                            timeout: Self.timeout, in: scratch.path)
        let rank0 = try #require(Self.rankPID(process.stderr, rank: 0))
        process.send(SIGKILL)
        let launcher = try await process.finish()
        let killedAt = Date()
        while Date().timeIntervalSince(killedAt) < CLI.timeLimit, Self.isRunning(rank0) || Self.isRunning(rank1) {
            try await Task.sleep(for: .milliseconds(50))
        }

        #expect(!launcher.timedOut)
        #expect(!Self.isRunning(rank0), "rank 0 (pid \(rank0)) still runs; stderr: \(process.stderr)")
        #expect(!Self.isRunning(rank1), "rank 1 (pid \(rank1)) still runs; stderr: \(process.stderr)")
        let lines = process.stderr.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("npid: rank ") && $0.contains(": the launcher (pid ") && $0.hasSuffix(") has exited; stopping as on SIGTERM") },
                "stderr: \(process.stderr)")
        // Whichever rank notices first stops by SIGTERM and requests that the other stop, so rank 0
        // may report either cause.
        #expect(lines.contains { $0.hasPrefix("npid: stopped by SIGTERM ") || $0.hasPrefix("npid: stopped at another rank's request ") },
                "stderr: \(process.stderr)")
        let saved = try Checkpoint.read(contentsOf: runDirectory + "/" + Checkpoint.fileName)
        #expect(saved.worldSize == 2)
    }

    /// Returns the pid that the launcher printed for `rank`.
    static func rankPID(_ stderr: String, rank: Int) -> Int32? {
        let marker = "started rank \(rank) of 2 (pid "
        guard let line = stderr.split(separator: "\n").first(where: { $0.contains(marker) }) else { return nil }
        return Int32(line.split(separator: "pid ").last!.dropLast())
    }

    /// Returns whether `pid` names a live process. An orphan that exited stays a zombie
    /// until the process that adopted it reaps it, which a container's init may never do.
    static func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else {
            return false
        }
        let state = stat[stat.index(close, offsetBy: 2)...].prefix(1)
        return state != "Z" && state != "X"
    }

    /// Returns a TCP port on 127.0.0.1 that was free a moment ago.
    static func unusedPort() -> Int? {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return nil }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0
            }
        }
        return bound ? Int(UInt16(bigEndian: address.sin_port)) : nil
    }

    /// Starts a two-rank run and waits until its first epoch has ended; returns the launcher
    /// process and the pid of rank 1.
    static func startTwoRanks(dataset: CLIDataset, runDirectory: String, timeout: Double,
                              in folder: String) async throws -> (CLIProcess, Int32) {
        let process = try CLIProcess(["train", "--data", dataset.root, "--run-dir", runDirectory, "--nproc", "2",
                                      "--dist-timeout", String(Int(timeout))] + flags,
                                     in: folder)
        let started = try await process.waitForStderr(containing: "started rank 1 of 2 (pid ")
        try #require(started, "rank 1 did not start; stderr: \(process.stderr)")
        let pid = try #require(rankPID(process.stderr, rank: 1))
        let epochEnded = try await process.waitForStdout(containing: "epoch 1/50 ")
        try #require(epochEnded, "epoch 1 did not finish; stderr: \(process.stderr)")
        return (process, pid)
    }
}
