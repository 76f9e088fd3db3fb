import Foundation
import Torch

/// A rank's membership in a data-parallel run: the process group and the store it met the
/// others through. Collectives go through `perform`, which turns a c10d failure into a
/// `LostRankError` that names the ranks that stopped responding.
public final class DistributedRun {
    public let settings: DistributedSettings
    public let group: ProcessGroup

    public var rank: Int { settings.rank }
    public var worldSize: Int { settings.worldSize }
    public var isLeader: Bool { settings.rank == 0 }

    /// Seconds a rank that caught a failure waits for the others to report that they are
    /// still alive, before it names the silent ones as lost.
    static let reportGrace = 3.0

    /// Joins the run: connects to (or, as rank 0 without a launcher, hosts) the store and waits
    /// up to `settings.timeout` seconds for every rank to join the process group.
    public init(settings: DistributedSettings) throws {
        guard settings.worldSize >= 1, (0..<settings.worldSize).contains(settings.rank) else {
            throw UsageError("RANK must be in 0..<WORLD_SIZE, got rank \(settings.rank) of world size \(settings.worldSize)")
        }
        self.settings = settings
        let place = "\(settings.masterAddress):\(settings.masterPort)"
        do {
            let hostsStore = settings.rank == 0 && !settings.storeHostedByLauncher
            let store = try RendezvousStore(host: settings.masterAddress, port: settings.masterPort,
                                            isServer: hostsStore, timeout: settings.timeout)
            group = try ProcessGroup(store: store, rank: settings.rank, worldSize: settings.worldSize,
                                     interface: settings.bindAddress, timeout: settings.timeout)
        } catch let error as TorchError {
            throw DistributedError(message: "rank \(settings.rank) could not join the \(settings.worldSize) ranks at \(place) within --dist-timeout \(Self.seconds(settings.timeout)) s (c10d: \(Self.firstLine(error.message))); start every rank with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE, and check that the port is free and reachable")
        }
    }

    /// Runs `body`, a collective named `operation`, and replaces a c10d failure by a
    /// `LostRankError` after finding out which ranks are gone.
    func perform<T>(_ operation: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as TorchError {
            throw diagnose(error, during: operation)
        }
    }

    /// True on every rank when `local` is true on any rank, so all ranks stop at the same step.
    func anyRank(_ local: Bool) throws -> Bool {
        try perform("the stop-request exchange") {
            let flag = try Tensor([Float(local ? 1 : 0)])
            try group.allReduceSum([flag])
            return try flag.item() > 0
        }
    }

    /// Marks this rank alive in the store, waits `reportGrace` seconds for the other ranks to
    /// do the same, and names those that did not.
    func diagnose(_ error: TorchError, during operation: String) -> LostRankError {
        let cause = Self.firstLine(error.message)
        let store = group.store
        let key = { (rank: Int) in "npid/failed/\(rank)" }
        do {
            try store.set(key(rank), "1")
            var responded: Set<Int> = [rank]
            let deadline = Date().addingTimeInterval(Self.reportGrace)
            while responded.count < worldSize && Date() < deadline {
                for other in 0..<worldSize where !responded.contains(other) {
                    if try store.contains(key(other)) {
                        responded.insert(other)
                    }
                }
                if responded.count < worldSize {
                    Thread.sleep(forTimeInterval: 0.1)
                }
            }
            let lost = (0..<worldSize).filter { !responded.contains($0) }
            return LostRankError(rank: rank, lostRanks: lost, operation: operation, cause: cause, storeReachable: true)
        } catch {
            // The store's host is gone: rank 0, unless a launcher hosts it.
            let lost = settings.storeHostedByLauncher ? [] : [0]
            return LostRankError(rank: rank, lostRanks: lost, operation: operation, cause: cause, storeReachable: false)
        }
    }

    static func firstLine(_ text: String) -> String {
        String(text.split(separator: "\n", maxSplits: 1).first ?? "")
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}

/// A data-parallel run that cannot start (exit 1).
public struct DistributedError: Error, CustomStringConvertible {
    public let message: String

    public init(message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// A collective that failed because a rank died or stopped responding within the timeout.
public struct LostRankError: Error, CustomStringConvertible {
    /// The rank that caught the failure.
    public let rank: Int
    /// Ranks that did not report back; empty when no rank could be named.
    public let lostRanks: [Int]
    public let operation: String
    /// c10d's message.
    public let cause: String
    public let storeReachable: Bool

    public var description: String {
        let who: String
        switch lostRanks.count {
        case 0: who = "a rank stopped responding"
        case 1: who = "rank \(lostRanks[0]) stopped responding"
        default: who = "ranks \(lostRanks.map(String.init).joined(separator: ", ")) stopped responding"
        }
        let store = storeReachable ? "" : " and the rendezvous store is unreachable"
        return "rank \(rank): \(who)\(store) during \(operation) (c10d: \(cause)); the run cannot go on without it"
    }
}
