import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A batch of transformed images.
public struct Batch: Sendable {
    /// `count * 3 * imageSize * imageSize` floats in [0, 1], in `layout` order.
    public var pixels: [Float]
    /// Dataset index of each image.
    public var indices: [Int]
    /// Class index of each image.
    public var labels: [Int]
    /// Side of the square images, in pixels.
    public var imageSize: Int
    public var layout: PixelLayout

    public var count: Int { indices.count }
}

/// Builds batches of transformed images from an `ImageStore`, on worker threads ahead of the consumer.
///
/// Each epoch visits every dataset index exactly once and keeps the last, smaller batch. The visiting order is
/// a permutation that is a pure function of (seed, epoch) when `shuffle` is true, else dataset order.
/// Augmentation randomness comes from `SampleRandom.forSample(seed:epoch:index:)`, so batches are
/// bit-identical for any worker count. Images that are not cached in the store are decoded by the workers.
public final class BatchLoader: @unchecked Sendable {
    public let store: ImageStore
    public let transform: ImageTransform
    public let batchSize: Int
    public let shuffle: Bool
    public let seed: UInt64
    /// Worker threads per epoch; 0 builds each batch on the thread that calls `next()`.
    public let workers: Int
    /// Maximum batches claimed by workers but not yet taken by the consumer.
    public let prefetch: Int
    public let layout: PixelLayout

    /// Number of batches per epoch, counting the last partial one.
    public var batchCount: Int { (store.count + batchSize - 1) / batchSize }

    let threadCounter = LoaderThreadCounter()

    /// Worker threads of this loader that have not exited yet, over all epochs.
    var liveWorkerCount: Int { threadCounter.value }

    /// - Parameter prefetch: nil claims up to max(4, 2 × workers) batches ahead, so every worker has one
    ///   batch to build while finished ones wait for the consumer.
    public init(store: ImageStore, transform: ImageTransform, batchSize: Int, shuffle: Bool, seed: UInt64,
                workers: Int, prefetch: Int? = nil, layout: PixelLayout = .nchw) {
        let prefetch = prefetch ?? max(4, 2 * workers)
        precondition(batchSize > 0, "BatchLoader batchSize must be positive, got \(batchSize)")
        precondition(workers >= 0, "BatchLoader workers must not be negative, got \(workers)")
        precondition(prefetch > 0, "BatchLoader prefetch must be positive, got \(prefetch)")
        if case .train(let augmentation) = transform {
            augmentation.validate()
        }
        self.store = store
        self.transform = transform
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.seed = seed
        self.workers = workers
        self.prefetch = prefetch
        self.layout = layout
    }

    /// Returns the dataset indices of `epoch` in visiting order.
    public func order(epoch: Int) -> [Int] {
        var order = Array(0..<store.count)
        guard shuffle else { return order }
        var random = SampleRandom.forShuffle(seed: seed, epoch: epoch)
        for index in stride(from: order.count - 1, to: 0, by: -1) {
            order.swapAt(index, random.nextInt(below: index + 1))
        }
        return order
    }

    /// Starts the workers of `epoch` and returns its batches in order, from batch number
    /// `firstBatch` on. A run resumed mid-epoch passes the steps it has taken, so those batches
    /// are never built. Dropping the returned value (and all its copies) or calling `cancel()`
    /// stops the workers.
    public func epoch(_ epoch: Int, startingAt firstBatch: Int = 0) -> LoaderEpoch {
        precondition((0...batchCount).contains(firstBatch),
                     "BatchLoader firstBatch must be in 0...\(batchCount), got \(firstBatch)")
        return self.epoch(epoch, order: order(epoch: epoch), startingAt: firstBatch)
    }

    /// Returns the batches of `order`, cut into `batchSize` pieces (the last may be smaller),
    /// augmented as samples of `epoch`: the share of one rank in a data-parallel run.
    func epoch(_ epoch: Int, order: [Int], startingAt firstBatch: Int = 0) -> LoaderEpoch {
        let plan = LoaderEpochPlan(loader: self, epoch: epoch, order: order)
        precondition((0...plan.batchCount).contains(firstBatch),
                     "BatchLoader firstBatch must be in 0...\(plan.batchCount), got \(firstBatch)")
        let run = LoaderEpochRun(plan: plan, firstBatch: firstBatch, workers: workers, prefetch: prefetch,
                                 counter: threadCounter)
        return LoaderEpoch(run: run)
    }
}

/// The batches of one epoch, in order. Copies share one position.
public struct LoaderEpoch: Sequence, IteratorProtocol, Sendable {
    let run: LoaderEpochRun

    /// Returns the next batch, or nil after the last one or after `cancel()`.
    /// - Throws: the `DataError` of an image that failed to decode; the epoch is cancelled then.
    public func nextBatch() throws -> Batch? {
        try run.next()
    }

    /// Returns the next batch like `nextBatch()` but traps when an image fails to decode, so it suits only
    /// stores whose images are all in memory. Code that may decode files calls `nextBatch()`.
    /// Not mutating, because the position lives in the shared run; this allows `loader.epoch(0).next()`.
    public func next() -> Batch? {
        do {
            return try nextBatch()
        } catch {
            preconditionFailure("LoaderEpoch.next() met an image that failed to decode (\(error)); use nextBatch()")
        }
    }

    /// Stops the workers and waits for them to exit; later calls to `next()` return nil.
    public func cancel() {
        run.cancel()
    }
}

/// Everything needed to build any batch of one epoch; immutable, so workers share it freely.
struct LoaderEpochPlan: Sendable {
    let loader: BatchLoader
    let epoch: Int
    let order: [Int]

    var batchCount: Int { (order.count + loader.batchSize - 1) / loader.batchSize }

    func makeBatch(_ number: Int) throws -> Batch {
        let store = loader.store
        let batchSize = loader.batchSize
        let indices = Array(order[(number * batchSize)..<min((number + 1) * batchSize, order.count)])
        let labels = indices.map { store.labels[$0] }
        let size = loader.transform.outputSize
        let imageLength = 3 * size * size

        let pixels = try [Float](unsafeUninitializedCapacity: indices.count * imageLength) { buffer, initializedCount in
            let base = buffer.baseAddress!
            for (position, index) in indices.enumerated() {
                loader.transform.apply(try store[index], seed: loader.seed, epoch: epoch, index: index,
                                       into: base + position * imageLength, layout: loader.layout)
            }
            initializedCount = buffer.count
        }
        return Batch(pixels: pixels, indices: indices, labels: labels, imageSize: size, layout: loader.layout)
    }
}

/// Owner of one epoch's workers; its deinit cancels them, so an abandoned `LoaderEpoch` leaks no threads.
/// Workers hold only the shared `LoaderEpochState`, never this object.
final class LoaderEpochRun: @unchecked Sendable {
    private let state: LoaderEpochState
    private let threads: [pthread_t]
    /// Next batch number for `workers == 0`, built on the consumer's thread.
    private var nextSynchronous = 0
    private let synchronousLock = NSLock()

    init(plan: LoaderEpochPlan, firstBatch: Int, workers: Int, prefetch: Int, counter: LoaderThreadCounter) {
        state = LoaderEpochState(plan: plan, firstBatch: firstBatch, prefetch: prefetch)
        nextSynchronous = firstBatch
        var threads: [pthread_t] = []
        for _ in 0..<min(workers, plan.batchCount - firstBatch) {
            threads.append(Self.startWorker(state: state, counter: counter))
        }
        self.threads = threads
    }

    deinit {
        cancel()
    }

    func next() throws -> Batch? {
        let result = threads.isEmpty ? nextBuiltHere() : state.take()
        switch result {
        case nil:
            return nil
        case .success(let batch)?:
            return batch
        case .failure(let error)?:
            cancel()
            throw error
        }
    }

    private func nextBuiltHere() -> Result<Batch, Error>? {
        synchronousLock.lock()
        defer { synchronousLock.unlock() }
        guard !state.isCancelled, nextSynchronous < state.plan.batchCount else { return nil }
        nextSynchronous += 1
        return Result { try state.plan.makeBatch(nextSynchronous - 1) }
    }

    /// Stops the workers and joins them; a worker that is building a batch finishes that batch first.
    func cancel() {
        guard state.cancel() else { return }
        for thread in threads {
            pthread_join(thread, nil)
        }
    }

    private static func startWorker(state: LoaderEpochState, counter: LoaderThreadCounter) -> pthread_t {
        counter.add(1)
        let context = Unmanaged.passRetained(LoaderWorkerContext(state: state, counter: counter)).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { rawContext in
            let context = Unmanaged<LoaderWorkerContext>.fromOpaque(rawContext!).takeRetainedValue()
            context.state.runWorker()
            context.counter.add(-1)
            return nil
        }, context)
        precondition(status == 0, "BatchLoader could not start a worker thread (pthread_create returned \(status))")
        return thread
    }
}

private final class LoaderWorkerContext {
    let state: LoaderEpochState
    let counter: LoaderThreadCounter

    init(state: LoaderEpochState, counter: LoaderThreadCounter) {
        self.state = state
        self.counter = counter
    }
}

/// Work queue and reorder buffer shared by the workers and the consumer of one epoch.
///
/// Workers claim batch numbers in order, but only while fewer than `prefetch` batches are claimed and not
/// yet taken. Finished batches, or the error that stopped one, wait in `slots[number % prefetch]` until
/// the consumer takes them in order.
final class LoaderEpochState: @unchecked Sendable {
    let plan: LoaderEpochPlan
    private let condition = NSCondition()
    private var slots: [Result<Batch, Error>?]
    private var nextToClaim = 0
    private var nextToTake = 0
    private var cancelled = false

    init(plan: LoaderEpochPlan, firstBatch: Int, prefetch: Int) {
        self.plan = plan
        slots = Array(repeating: nil, count: prefetch)
        nextToClaim = firstBatch
        nextToTake = firstBatch
    }

    var isCancelled: Bool {
        condition.lock()
        defer { condition.unlock() }
        return cancelled
    }

    /// Sets the cancelled flag and wakes every waiting thread; returns false if it was already set.
    func cancel() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if cancelled { return false }
        cancelled = true
        slots = Array(repeating: nil, count: slots.count)
        condition.broadcast()
        return true
    }

    func runWorker() {
        while let number = claim() {
            let batch = Result { try plan.makeBatch(number) }
            condition.lock()
            if !cancelled {
                slots[number % slots.count] = batch
                condition.broadcast()
            }
            condition.unlock()
        }
    }

    /// Returns the next batch number to build, waiting while the reorder buffer is full;
    /// nil when the epoch is complete or cancelled.
    private func claim() -> Int? {
        condition.lock()
        defer { condition.unlock() }
        while !cancelled && nextToClaim < plan.batchCount && nextToClaim - nextToTake >= slots.count {
            condition.wait()
        }
        guard !cancelled && nextToClaim < plan.batchCount else { return nil }
        nextToClaim += 1
        return nextToClaim - 1
    }

    func take() -> Result<Batch, Error>? {
        condition.lock()
        defer { condition.unlock() }
        guard nextToTake < plan.batchCount else { return nil }
        let slot = nextToTake % slots.count
        while !cancelled && slots[slot] == nil {
            condition.wait()
        }
        guard !cancelled, let batch = slots[slot] else { return nil }
        slots[slot] = nil
        nextToTake += 1
        condition.broadcast()
        return batch
    }
}

/// A counter of live worker threads, for tests that check that abandoned epochs leave none behind.
final class LoaderThreadCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0

    var value: Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }

    func add(_ delta: Int) {
        lock.lock()
        count += delta
        lock.unlock()
    }
}
