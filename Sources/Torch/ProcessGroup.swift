import CTorch

/// A key-value server for rendezvous: c10d's TCPStore. Rank 0, or the launcher of a
/// local run, hosts it; every rank connects to it to find the others.
public final class RendezvousStore: @unchecked Sendable {
    let handle: OpaquePointer

    /// Connects to the store at `host`:`port`, or hosts it there when `isServer` is true
    /// (port 0 then picks a free port, see `port`). Operations that get no answer within
    /// `timeout` seconds fail.
    public init(host: String, port: Int, isServer: Bool, timeout: Double) throws {
        var out: OpaquePointer?
        try check(ct_store_create(host, Int32(port), isServer ? 1 : 0, Int64(timeout * 1000), &out))
        handle = out!
    }

    deinit {
        ct_store_free(handle)
    }

    /// The TCP port the store listens on.
    public var port: Int {
        get throws {
            var value: Int32 = 0
            try check(ct_store_port(handle, &value))
            return Int(value)
        }
    }

    public func set(_ key: String, _ value: String) throws {
        try check(ct_store_set(handle, key, value))
    }

    /// True when `key` is set; does not wait for it.
    public func contains(_ key: String) throws -> Bool {
        var exists: Int32 = 0
        try check(ct_store_check(handle, key, &exists))
        return exists != 0
    }
}

/// A group of processes (ranks) running collectives together: c10d's Gloo process group
/// over TCP. Every rank must call the same collectives in the same order. A collective that
/// does not complete within the timeout, or whose peer disappears, throws `TorchError`.
public final class ProcessGroup: @unchecked Sendable {
    let handle: OpaquePointer
    public let rank: Int
    public let worldSize: Int
    /// Kept alive as long as the group, which talks to it.
    public let store: RendezvousStore

    /// Joins the group of `worldSize` ranks that meet through `store`.
    ///
    /// - Parameters:
    ///   - interface: an address of this machine that the other ranks can reach.
    ///   - timeout: seconds a collective may wait for the other ranks.
    public init(store: RendezvousStore, rank: Int, worldSize: Int, interface: String, timeout: Double) throws {
        var out: OpaquePointer?
        try check(ct_process_group_create(store.handle, Int32(rank), Int32(worldSize), interface,
                                          Int64(timeout * 1000), &out))
        handle = out!
        self.rank = rank
        self.worldSize = worldSize
        self.store = store
    }

    deinit {
        ct_process_group_free(handle)
    }

    /// Sums `tensors` in place across ranks. They must share one dtype.
    public func allReduceSum(_ tensors: [Tensor]) throws {
        var handles: [OpaquePointer?] = tensors.map(\.handle)
        try handles.withUnsafeMutableBufferPointer { buffer in
            try check(ct_all_reduce_sum(handle, buffer.baseAddress, Int32(tensors.count)))
        }
        withExtendedLifetime(tensors) {}
    }

    /// Replaces `tensors` in place by their mean across ranks.
    public func allReduceMean(_ tensors: [Tensor]) throws {
        try allReduceSum(tensors)
        let scale = 1 / Double(worldSize)
        try withNoGrad {
            for tensor in tensors {
                try tensor.copy(from: tensor * scale)
            }
        }
    }

    /// Returns every rank's `tensor` concatenated along dim 0 in rank order; all ranks pass the same shape.
    public func allGather(_ tensor: Tensor) throws -> Tensor {
        try Tensor.make { ct_all_gather(handle, tensor.handle, $0) }
    }

    /// Copies rank `root`'s `tensor` into `tensor` on every rank.
    public func broadcast(_ tensor: Tensor, from root: Int = 0) throws {
        try check(ct_broadcast(handle, tensor.handle, Int32(root)))
    }

    public func barrier() throws {
        try check(ct_barrier(handle))
    }

    /// Returns the sum of `tensor` across ranks; its gradient is summed across ranks in
    /// backward too, so every rank must run that backward.
    public func differentiableSum(_ tensor: Tensor) throws -> Tensor {
        try Tensor.make { ct_all_reduce_sum_autograd(handle, tensor.handle, $0) }
    }
}
