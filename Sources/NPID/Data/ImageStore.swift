import Foundation

/// The width and height of an image, in pixels.
public struct ImageSize: Sendable, Hashable {
    public let width: Int
    public let height: Int

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }
}

/// The images of a dataset split, by dataset index: decoded in memory where they fit the cache budget,
/// otherwise decoded from their files each time they are read.
///
/// Immutable after init, so concurrent reads from loader workers are safe.
public final class ImageStore: @unchecked Sendable {
    public let classNames: [String]
    /// Class index of each image, by dataset index.
    public let labels: [Int]
    /// Source of each image, by dataset index: a file path, or `FILE[RECORD]` for a record of a CIFAR
    /// batch file. The array is empty for a store built from unnamed images in memory.
    public let paths: [String]
    /// Size of each image, by dataset index, known without decoding it again.
    public let imageSizes: [ImageSize]
    /// Decoded images; nil where the image did not fit the cache budget and is decoded on each read.
    private let cache: [RGBImage?]

    public var count: Int { labels.count }

    /// Number of images held decoded in memory.
    public let cachedCount: Int

    /// Bytes of decoded pixels held in memory.
    public let cachedBytes: Int

    /// Returns the image with dataset index `index`, decoding its file when it is not cached.
    /// - Throws: a `DataError` when the file no longer decodes, for example because it changed after the scan.
    public subscript(index: Int) -> RGBImage {
        get throws {
            if let image = cache[index] {
                return image
            }
            return try ImageDecoder.decode(contentsOf: paths[index])
        }
    }

    /// Wraps images already in memory.
    /// - Parameter paths: a name for each image, used in messages; empty when there are none.
    public init(images: [RGBImage], labels: [Int], classNames: [String], paths: [String] = []) {
        precondition(images.count == labels.count, "ImageStore needs one label per image")
        precondition(paths.isEmpty || paths.count == images.count, "ImageStore needs no paths or one per image")
        precondition(labels.allSatisfy { classNames.indices.contains($0) },
                     "ImageStore labels must index classNames")
        self.cache = images
        self.labels = labels
        self.classNames = classNames
        self.paths = paths
        self.imageSizes = images.map { ImageSize(width: $0.width, height: $0.height) }
        self.cachedCount = images.count
        self.cachedBytes = images.reduce(0) { $0 + $1.pixels.count }
    }

    /// Wraps image files whose decoded images are in `cache` where they fit, read from `paths` elsewhere.
    init(paths: [String], labels: [Int], classNames: [String], imageSizes: [ImageSize], cache: [RGBImage?]) {
        precondition(paths.count == labels.count && paths.count == imageSizes.count && paths.count == cache.count,
                     "ImageStore needs one path, label, size and cache slot per image")
        self.cache = cache
        self.labels = labels
        self.classNames = classNames
        self.paths = paths
        self.imageSizes = imageSizes
        self.cachedCount = cache.reduce(0) { $0 + ($1 == nil ? 0 : 1) }
        self.cachedBytes = cache.reduce(0) { $0 + ($1?.pixels.count ?? 0) }
    }

    /// Scans `folder` on `threads` threads and keeps every image in memory.
    /// - Throws: `DataError.badImages` naming every file that failed to decode.
    public convenience init(folder: ImageFolder, threads: Int) throws {
        let scan = ImageFolderScan(folder: folder, options: ImageScanOptions(threads: threads))
        if !scan.badFiles.isEmpty {
            throw DataError.badImages(files: scan.badFiles)
        }
        let store = try scan.makeStore()
        self.init(paths: store.paths, labels: store.labels, classNames: store.classNames,
                  imageSizes: store.imageSizes, cache: store.cache)
    }
}
