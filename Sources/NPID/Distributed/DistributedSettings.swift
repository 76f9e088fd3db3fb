/// Where a rank sits in a data-parallel run and how it meets the others, as torchrun's
/// variables name it (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK).
public struct DistributedSettings: Sendable, Equatable {
    public var rank: Int
    public var worldSize: Int
    /// Rank within this machine; picks the GPU with `--device cuda`.
    public var localRank: Int
    /// Host of the rendezvous store (rank 0's machine, or the launcher's).
    public var masterAddress: String
    public var masterPort: Int
    /// Seconds a rendezvous or a collective may wait for the other ranks.
    public var timeout: Double
    /// This machine's address that the other ranks can reach; nil binds to the address of
    /// this machine's hostname, or to 127.0.0.1 when the master is on loopback.
    public var interface: String?
    /// True when a launcher (`npid train --nproc`) hosts the store, so rank 0 only connects to it.
    public var storeHostedByLauncher: Bool

    public init(rank: Int, worldSize: Int, localRank: Int = 0, masterAddress: String = "127.0.0.1",
                masterPort: Int = 29500, timeout: Double = 300, interface: String? = nil,
                storeHostedByLauncher: Bool = false) {
        self.rank = rank
        self.worldSize = worldSize
        self.localRank = localRank
        self.masterAddress = masterAddress
        self.masterPort = masterPort
        self.timeout = timeout
        self.interface = interface
        self.storeHostedByLauncher = storeHostedByLauncher
    }

    /// The address the process group binds to.
    var bindAddress: String {
        if let interface {
            return interface
        }
        let loopback = masterAddress == "localhost" || masterAddress.hasPrefix("127.") || masterAddress == "::1"
        return loopback ? "127.0.0.1" : ""
    }
}
