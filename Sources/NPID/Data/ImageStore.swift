import Dispatch
import Foundation

/// All images of a dataset, decoded once into memory (about 3 KB per 32×32 image).
///
/// Immutable after init, so concurrent reads from loader workers are safe.
public final class ImageStore: @unchecked Sendable {
    public let classNames: [String]
    /// Class index of each image, by dataset index.
    public let labels: [Int]
    /// Source file of each image, by dataset index; empty for a store built from images in memory.
    public let paths: [String]
    private let images: [RGBImage]

    public var count: Int { images.count }

    public subscript(index: Int) -> RGBImage { images[index] }

    /// Decodes every file of `folder` on `threads` threads (at least 1).
    /// - Throws: the `DataError` of the failed file with the lowest dataset index.
    public init(folder: ImageFolder, threads: Int) throws {
        images = try Self.decodeAll(folder.paths, threads: max(1, threads))
        labels = folder.labels
        classNames = folder.classNames
        paths = folder.paths
    }

    /// Wraps images already in memory, for tests and synthetic data.
    public init(images: [RGBImage], labels: [Int], classNames: [String]) {
        precondition(images.count == labels.count, "ImageStore needs one label per image")
        precondition(labels.allSatisfy { classNames.indices.contains($0) },
                     "ImageStore labels must index classNames")
        self.images = images
        self.labels = labels
        self.classNames = classNames
        self.paths = []
    }

    private static func decodeAll(_ paths: [String], threads: Int) throws -> [RGBImage] {
        let results = ImageDecodeResults(count: paths.count)
        // Threads claim small chunks, so a slow file does not leave the other threads idle.
        let chunkSize = 64
        DispatchQueue.concurrentPerform(iterations: min(threads, max(1, paths.count))) { _ in
            while let range = results.claimChunk(size: chunkSize) {
                for index in range {
                    do {
                        results.store(try ImageDecoder.decode(contentsOf: paths[index]), at: index)
                    } catch {
                        results.recordFailure(error, at: index)
                        return
                    }
                }
            }
        }
        return try results.finish()
    }
}

/// Slots filled by the decode threads; each slot is written by exactly one thread, so only the chunk
/// counter and the failure need the lock.
private final class ImageDecodeResults: @unchecked Sendable {
    private let lock = NSLock()
    private let slots: UnsafeMutableBufferPointer<RGBImage?>
    private var nextIndex = 0
    private var failure: (index: Int, error: Error)?

    init(count: Int) {
        slots = .allocate(capacity: count)
        slots.initialize(repeating: nil)
    }

    deinit {
        slots.deinitialize()
        slots.deallocate()
    }

    /// Returns the next chunk of dataset indices, or nil when all are taken or a decode failed.
    func claimChunk(size: Int) -> Range<Int>? {
        lock.lock()
        defer { lock.unlock() }
        guard failure == nil, nextIndex < slots.count else { return nil }
        let start = nextIndex
        nextIndex = min(start + size, slots.count)
        return start..<nextIndex
    }

    func store(_ image: RGBImage, at index: Int) {
        slots[index] = image
    }

    func recordFailure(_ error: Error, at index: Int) {
        lock.lock()
        defer { lock.unlock() }
        if failure == nil || index < failure!.index {
            failure = (index, error)
        }
    }

    func finish() throws -> [RGBImage] {
        if let failure {
            throw failure.error
        }
        return slots.map { $0! }
    }
}
