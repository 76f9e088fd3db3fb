import Foundation
import NPID
import Torch

/// `npid train --nproc N`: starts N ranks of this machine as child processes of the same
/// executable, the way torchrun does, and watches them.
///
/// Machine 0's launcher hosts the rendezvous store, so the store outlives any one rank and a
/// surviving rank can still name the rank it lost. When a rank fails or dies, the launcher
/// gives the others the time to notice and exit on their own (--dist-timeout plus a few
/// seconds), then ends them, and exits 1 with one line naming the lost rank.
struct Launcher {
    let processCount: Int
    let nodeCount: Int
    let nodeRank: Int
    let masterAddress: String
    let masterPort: Int
    let timeout: Double
    /// The worker's arguments: the train command's, less the launcher's flags.
    let workerArguments: [String]
    /// The command that continues the run, shown after a failure.
    let resumeHint: String
    /// Path of the run's newest checkpoint, checked to tell whether --resume has anything to continue.
    let checkpointPath: String

    init(options: ParsedOptions, arguments: [String], environment: [String: String], resumeHint: String,
         checkpointPath: String) throws {
        processCount = try options.int("--nproc") ?? 1
        guard processCount >= 1 else {
            throw UsageError("--nproc must be at least 1, got \(processCount)")
        }
        nodeCount = try options.int("--nnodes") ?? 1
        guard nodeCount >= 1 else {
            throw UsageError("--nnodes must be at least 1, got \(nodeCount)")
        }
        nodeRank = try options.int("--node-rank") ?? 0
        guard (0..<nodeCount).contains(nodeRank) else {
            throw UsageError("--node-rank must be in 0...\(nodeCount - 1) for --nnodes \(nodeCount), got \(nodeRank)")
        }
        for flag in ["--rank", "--world-size", "--local-rank"] where options.has(flag) {
            throw UsageError("\(flag) is set by --nproc for each worker; drop \(flag), or drop --nproc and start each rank yourself")
        }
        masterAddress = options.string("--master-addr") ?? environment["MASTER_ADDR"] ?? "127.0.0.1"
        // One machine needs no agreed port, so it takes a free one; several must agree.
        masterPort = try DistributedOptions.port(options, environment) ?? (nodeCount == 1 ? 0 : DistributedOptions.defaultPort)
        timeout = try DistributedOptions.timeout(options)
        workerArguments = Self.removingLauncherFlags(arguments)
        self.resumeHint = resumeHint
        self.checkpointPath = checkpointPath
    }

    /// Returns `arguments` without --nproc, --nnodes and --node-rank and their values.
    static func removingLauncherFlags(_ arguments: [String]) -> [String] {
        var kept: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let name = argument.split(separator: "=", maxSplits: 1).first.map(String.init) ?? argument
            if DistributedOptions.launcherFlags.contains(name) {
                index += argument.contains("=") ? 1 : 2
                continue
            }
            kept.append(argument)
            index += 1
        }
        return kept
    }

    /// Starts the ranks, waits for them, and exits with the run's status. `folderLock`, held
    /// until then, is the run folder's lock on machine 0.
    func run(folderLock: RunFolderLock?) throws -> Never {
        let worldSize = processCount * nodeCount
        var store: RendezvousStore?
        var port = masterPort
        if nodeRank == 0 {
            do {
                store = try RendezvousStore(host: masterAddress, port: masterPort, isServer: true, timeout: timeout)
                port = try store!.port
            } catch let error as TorchError {
                throw DistributedError(message: "could not host the rendezvous store at \(masterAddress):\(masterPort) (c10d: \(DistributedRunText.firstLine(error.message))); pick a free --master-port")
            }
        }

        // The watch loop passes SIGINT, SIGTERM and SIGHUP on to the workers, so each saves a checkpoint.
        var workers: [Process] = []
        ForwardedSignals.install()
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        for localRank in 0..<processCount {
            let rank = nodeRank * processCount + localRank
            let worker = Process()
            worker.executableURL = executable
            worker.arguments = ["train"] + workerArguments
            var environment = ProcessInfo.processInfo.environment
            environment["RANK"] = String(rank)
            environment["WORLD_SIZE"] = String(worldSize)
            environment["LOCAL_RANK"] = String(localRank)
            environment["LOCAL_WORLD_SIZE"] = String(processCount)
            environment["MASTER_ADDR"] = masterAddress
            environment["MASTER_PORT"] = String(port)
            environment["TORCHELASTIC_USE_AGENT_STORE"] = "True"
            environment[LauncherWatch.environmentKey] = String(getpid())
            worker.environment = environment
            try worker.run()
            Console.log("npid: started rank \(rank) of \(worldSize) (pid \(worker.processIdentifier))")
            workers.append(worker)
        }

        let status = watch(workers, firstRank: nodeRank * processCount)
        withExtendedLifetime(store) {}
        if status != 0 {
            folderLock?.removeFolderIfUnused()
        }
        exit(status)
    }

    /// Waits for every worker; after the first failure, gives the others `timeout` plus a
    /// grace period to exit, then ends them. Returns the launcher's exit status.
    func watch(_ workers: [Process], firstRank: Int) -> Int32 {
        var failure: (rank: Int, description: String, status: Int32)?
        var deadline: Date?
        while workers.contains(where: \.isRunning) {
            for number in ForwardedSignals.takePending() {
                // Workers run in process groups of their own, so a closed terminal reaches
                // them only through the launcher; they stop on it as on SIGTERM.
                let forwarded = number == SIGHUP ? SIGTERM : number
                for worker in workers where worker.isRunning {
                    kill(worker.processIdentifier, forwarded)
                }
            }
            if failure == nil {
                for (offset, worker) in workers.enumerated() where !worker.isRunning && !Self.succeeded(worker) {
                    failure = (firstRank + offset, Self.describe(worker), worker.terminationStatus)
                    deadline = Date().addingTimeInterval(timeout + 10)
                    break
                }
            }
            if let deadline, Date() > deadline {
                for worker in workers where worker.isRunning {
                    kill(worker.processIdentifier, SIGKILL)
                }
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        if failure == nil, let index = workers.firstIndex(where: { !Self.succeeded($0) }) {
            failure = (firstRank + index, Self.describe(workers[index]), workers[index].terminationStatus)
        }
        guard let failure else {
            return 0
        }
        let worker = workers[failure.rank - firstRank]
        if worker.terminationReason == .exit && [2, 128 + SIGHUP, 128 + SIGINT, 128 + SIGTERM].contains(failure.status) {
            // A usage error or a requested stop: the worker has printed the reason.
            return failure.status
        }
        // A rank that exits with 1 has printed its own error, often about another rank that hung.
        let outcome = worker.terminationReason == .uncaughtSignal ? "was lost" : "failed (its error is above)"
        let next = FileManager.default.fileExists(atPath: checkpointPath)
            ? "Continue the run from its last checkpoint with: \(resumeHint)"
            : "No checkpoint was written, so start the run again once the cause is fixed."
        Console.log("npid: rank \(failure.rank) \(outcome): it \(failure.description); the other ranks were stopped. \(next)")
        return 1
    }

    static func succeeded(_ worker: Process) -> Bool {
        worker.terminationReason == .exit && worker.terminationStatus == 0
    }

    static func describe(_ worker: Process) -> String {
        if worker.terminationReason == .uncaughtSignal {
            return "was killed by signal \(worker.terminationStatus) (pid \(worker.processIdentifier))"
        }
        return "exited with status \(worker.terminationStatus) (pid \(worker.processIdentifier))"
    }
}

/// Text helpers shared with the worker's messages.
enum DistributedRunText {
    static func firstLine(_ text: String) -> String {
        String(text.split(separator: "\n", maxSplits: 1).first ?? "")
    }
}
