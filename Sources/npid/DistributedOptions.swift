import Foundation
import NPID

/// The data-parallel flags of `npid train` and the torchrun variables they stand for.
enum DistributedOptions {
    static let defaultTimeout = 300.0
    static let defaultPort = 29500

    static let specs: [OptionSpec] = [
        OptionSpec("--nproc", value: "N", help: "start N worker processes (ranks) on this machine that train one model data-parallel over Gloo; -b is each rank's batch (default 1, no workers)"),
        OptionSpec("--nnodes", value: "M", help: "machines in the run, each starting --nproc ranks (default 1)"),
        OptionSpec("--node-rank", value: "K", help: "this machine's number from 0 to M-1; machine 0 hosts the rendezvous (default 0)"),
        OptionSpec("--rank", value: "R", help: "run as rank R of --world-size, without a launcher (default $RANK)"),
        OptionSpec("--world-size", value: "W", help: "ranks in the run (default $WORLD_SIZE, else 1)"),
        OptionSpec("--local-rank", value: "L", help: "rank on this machine; picks cuda:L with --device cuda (default $LOCAL_RANK, else 0)"),
        OptionSpec("--master-addr", value: "HOST", help: "address of rank 0's machine, where the rendezvous store listens (default $MASTER_ADDR, else 127.0.0.1)"),
        OptionSpec("--master-port", value: "PORT", help: "TCP port of the rendezvous store (default $MASTER_PORT, else \(defaultPort); a free port for a one-machine --nproc run)"),
        OptionSpec("--dist-interface", value: "ADDR", help: "this machine's address that the other ranks can reach (default: 127.0.0.1 when the master is local, else this host name's address)"),
        OptionSpec("--dist-timeout", value: "SECONDS", help: "seconds a rank waits for the others at rendezvous and in each collective before it fails (default \(Int(defaultTimeout)))"),
        OptionSpec("--sync-bn", help: "batch-norm statistics over the global batch of all ranks instead of each rank's slice"),
    ]

    /// Flags that only the launcher reads; its workers get the rest.
    static let launcherFlags: Set<String> = ["--nproc", "--nnodes", "--node-rank"]

    /// Returns this process's settings as a rank, or nil when it trains alone (world size 1).
    static func rankSettings(_ options: ParsedOptions, environment: [String: String]) throws -> DistributedSettings? {
        let worldSize = try integer(options, "--world-size", environment, "WORLD_SIZE") ?? 1
        guard worldSize >= 1 else {
            throw UsageError("--world-size (or WORLD_SIZE) must be at least 1, got \(worldSize)")
        }
        guard worldSize > 1 else {
            if let rank = try options.int("--rank"), rank != 0 {
                throw UsageError("--rank \(rank) needs --world-size \(rank + 1) or more (or WORLD_SIZE); pass --world-size as well, or use --nproc to start the ranks")
            }
            return nil
        }
        guard let rank = try integer(options, "--rank", environment, "RANK") else {
            throw UsageError("--world-size \(worldSize) needs this process's rank; pass --rank R or set RANK, or use --nproc to start the ranks")
        }
        guard (0..<worldSize).contains(rank) else {
            throw UsageError("--rank (or RANK) must be in 0...\(worldSize - 1) for world size \(worldSize), got \(rank)")
        }
        var settings = DistributedSettings(rank: rank, worldSize: worldSize)
        settings.localRank = try integer(options, "--local-rank", environment, "LOCAL_RANK") ?? 0
        settings.masterAddress = options.string("--master-addr") ?? environment["MASTER_ADDR"] ?? "127.0.0.1"
        settings.masterPort = try port(options, environment) ?? defaultPort
        settings.timeout = try timeout(options)
        settings.interface = options.string("--dist-interface")
        settings.storeHostedByLauncher = environment["TORCHELASTIC_USE_AGENT_STORE"] == "True"
        return settings
    }

    static func timeout(_ options: ParsedOptions) throws -> Double {
        let value = try options.double("--dist-timeout") ?? defaultTimeout
        guard value > 0 && value.isFinite else {
            throw UsageError("--dist-timeout must be a positive number of seconds, got \(value)")
        }
        return value
    }

    static func port(_ options: ParsedOptions, _ environment: [String: String]) throws -> Int? {
        guard let port = try integer(options, "--master-port", environment, "MASTER_PORT") else {
            return nil
        }
        guard (0...65535).contains(port) else {
            throw UsageError("--master-port (or MASTER_PORT) must be a TCP port from 0 to 65535, got \(port)")
        }
        return port
    }

    /// Returns the flag's value, else the environment variable's, else nil.
    static func integer(_ options: ParsedOptions, _ flag: String, _ environment: [String: String],
                        _ variable: String) throws -> Int? {
        if let value = try options.int(flag) {
            return value
        }
        guard let text = environment[variable], !text.isEmpty else {
            return nil
        }
        guard let value = Int(text) else {
            throw UsageError("\(variable) must be a whole number, got '\(text)'; fix or unset it")
        }
        return value
    }
}
