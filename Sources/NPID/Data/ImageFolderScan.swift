import Dispatch
import Foundation

/// The handling of image files that fail to decode when a folder is scanned.
public enum BadImagePolicy: String, Sendable, CaseIterable {
    /// Stop before training, naming every bad file.
    case fail
    /// Leave the bad files out of the dataset; dataset indices are assigned after they are removed.
    case skip
}

/// A limit on the bytes of decoded pixels kept in memory, shared by every scan that draws from it.
public final class ImageCacheBudget: @unchecked Sendable {
    private let lock = NSLock()
    public let limit: Int
    private var used = 0

    public init(bytes limit: Int) {
        precondition(limit >= 0, "ImageCacheBudget needs a limit of 0 or more bytes, got \(limit)")
        self.limit = limit
    }

    /// A budget that keeps every image, for callers that know their data is small.
    public static var unlimited: ImageCacheBudget { ImageCacheBudget(bytes: Int.max) }

    public var usedBytes: Int {
        lock.lock()
        defer { lock.unlock() }
        return used
    }

    /// Takes `bytes` from the budget and returns true, or returns false and takes nothing when they do not fit.
    func reserve(_ bytes: Int) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard bytes <= limit - used else { return false }
        used += bytes
        return true
    }
}

/// Settings of a folder scan.
public struct ImageScanOptions: Sendable {
    /// Decoding threads (at least 1 is used).
    public var threads: Int
    /// The memory limit for decoded images. Images beyond it are decoded again whenever they are read.
    public var cacheBudget: ImageCacheBudget

    public init(threads: Int, cacheBudget: ImageCacheBudget = .unlimited) {
        self.threads = threads
        self.cacheBudget = cacheBudget
    }
}

/// The result of decoding every file of an `ImageFolder` once: which files are images and how large,
/// which are not, and the decoded images that fit the cache budget.
///
/// Decoding every file at scan time finds truncated, corrupt and non-image files before any dataset
/// index is assigned, so the dataset's length and index map stay fixed for the whole run.
public struct ImageFolderScan: Sendable {
    public let folder: ImageFolder
    /// Files that failed to decode, in dataset order of the folder.
    public let badFiles: [BadImageFile]
    /// Size of each file of the folder that decoded; nil for bad files.
    public let imageSizes: [ImageSize?]
    let cache: [RGBImage?]

    public var goodCount: Int { folder.count - badFiles.count }

    /// Decodes every file of `folder`; never throws, because every failure is recorded in `badFiles`.
    public init(folder: ImageFolder, options: ImageScanOptions) {
        let results = ScanSlots(count: folder.count)
        let threadCount = min(max(1, options.threads), max(1, folder.count))
        // Threads claim small chunks in index order, so a slow file does not leave the others idle.
        DispatchQueue.concurrentPerform(iterations: threadCount) { _ in
            while let range = results.claimChunk(size: 16) {
                for index in range {
                    do {
                        let image = try ImageDecoder.decode(contentsOf: folder.paths[index])
                        let fits = options.cacheBudget.reserve(image.pixels.count)
                        results.store(.decoded(ImageSize(width: image.width, height: image.height),
                                               fits ? image : nil), at: index)
                    } catch let error as DataError {
                        results.store(.bad(error), at: index)
                    } catch {
                        results.store(.bad(.unreadableFile(path: folder.paths[index], reason: "\(error)")), at: index)
                    }
                }
            }
        }

        var badFiles: [BadImageFile] = []
        var sizes: [ImageSize?] = []
        var cache: [RGBImage?] = []
        for (index, outcome) in results.finish().enumerated() {
            switch outcome {
            case .decoded(let size, let image):
                sizes.append(size)
                cache.append(image)
            case .bad(let error):
                badFiles.append(BadImageFile(path: folder.paths[index], error: error))
                sizes.append(nil)
                cache.append(nil)
            }
        }
        self.folder = folder
        self.badFiles = badFiles
        self.imageSizes = sizes
        self.cache = cache
    }

    /// Builds the store of the files that decoded, numbered in folder order without the bad ones.
    /// - Throws: `DataError.noReadableImages` when every file of some class is bad.
    public func makeStore() throws -> ImageStore {
        var paths: [String] = []
        var labels: [Int] = []
        var sizes: [ImageSize] = []
        var images: [RGBImage?] = []
        for index in 0..<folder.count {
            guard let size = imageSizes[index] else { continue }
            paths.append(folder.paths[index])
            labels.append(folder.labels[index])
            sizes.append(size)
            images.append(cache[index])
        }
        let present = Set(labels)
        let emptied = folder.classNames.indices.filter { !present.contains($0) }.map { folder.classNames[$0] }
        guard emptied.isEmpty else {
            throw DataError.noReadableImages(path: folder.directory, classNames: emptied)
        }
        return ImageStore(paths: paths, labels: labels, classNames: folder.classNames, imageSizes: sizes,
                          cache: images)
    }

    /// Returns the store for `policy`: with `.fail` any bad file throws `DataError.badImages`,
    /// with `.skip` the bad files are left out (the caller reports `badFiles`).
    public func makeStore(policy: BadImagePolicy) throws -> ImageStore {
        if policy == .fail && !badFiles.isEmpty {
            throw DataError.badImages(files: badFiles)
        }
        return try makeStore()
    }
}

/// The outcome of decoding one file during a scan.
private enum ScanOutcome {
    /// The file decoded; the image is kept when it fit the cache budget.
    case decoded(ImageSize, RGBImage?)
    case bad(DataError)
}

/// Result slots filled by the scan threads; each slot is written by exactly one thread, so only the
/// chunk counter needs the lock.
private final class ScanSlots: @unchecked Sendable {
    private let lock = NSLock()
    private let slots: UnsafeMutableBufferPointer<ScanOutcome?>
    private var nextIndex = 0

    init(count: Int) {
        slots = .allocate(capacity: count)
        slots.initialize(repeating: nil)
    }

    deinit {
        slots.deinitialize()
        slots.deallocate()
    }

    /// Returns the next chunk of indices, or nil when all are taken.
    func claimChunk(size: Int) -> Range<Int>? {
        lock.lock()
        defer { lock.unlock() }
        guard nextIndex < slots.count else { return nil }
        let start = nextIndex
        nextIndex = min(start + size, slots.count)
        return start..<nextIndex
    }

    func store(_ outcome: ScanOutcome, at index: Int) {
        slots[index] = outcome
    }

    /// Returns every outcome in index order; call after all threads have finished.
    func finish() -> [ScanOutcome] {
        slots.map { $0! }
    }
}
