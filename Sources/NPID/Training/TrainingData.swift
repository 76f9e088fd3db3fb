import Foundation

/// The origin of a run's images.
public enum DataSource: Sendable, Equatable {
    /// One folder per split, each with one sub-folder of .jpg/.jpeg/.png files per class.
    case folders(train: String, test: String)
    /// The official CIFAR binary files in `directory` (the extracted archive folder or its parent).
    case cifar(CIFARDataset, directory: String)

    /// Returns the source for an image folder with `train/` and `test/` split folders.
    public static func imageFolder(root: String) -> DataSource {
        let root = ImageFolder.trimTrailingSlashes(root)
        return .folders(train: root + "/train", test: root + "/test")
    }
}

/// Settings for reading a run's images.
public struct DataLoadOptions: Sendable {
    /// Threads that decode image files while the folders are scanned.
    public var threads: Int
    public var badImagePolicy: BadImagePolicy
    /// Memory for decoded images, shared by both splits; images beyond it are decoded on each read.
    public var cacheBudget: ImageCacheBudget

    public init(threads: Int, badImagePolicy: BadImagePolicy = .fail, cacheBudget: ImageCacheBudget = .unlimited) {
        self.threads = threads
        self.badImagePolicy = badImagePolicy
        self.cacheBudget = cacheBudget
    }

    /// Half of the machine's memory: enough for CIFAR-10 (about 150 MB decoded) on any machine, and it
    /// leaves the other half to libtorch, the memory bank and the system.
    public static var defaultCacheBytes: Int {
        Int(clamping: ProcessInfo.processInfo.physicalMemory / 2)
    }
}

/// The train and test splits of a dataset.
///
/// Both splits must have the same classes, because the kNN vote compares their labels.
public struct TrainingData: Sendable {
    public let train: ImageStore
    public let test: ImageStore
    /// Files left out of either split by `BadImagePolicy.skip`.
    public let skippedFiles: [BadImageFile]
    /// Folders inside the class folders of either split, whose images are not read.
    public let unreadFolders: [String]
    public var classNames: [String] { train.classNames }

    public init(train: ImageStore, test: ImageStore, skippedFiles: [BadImageFile] = [], unreadFolders: [String] = []) {
        self.train = train
        self.test = test
        self.skippedFiles = skippedFiles
        self.unreadFolders = unreadFolders
    }

    /// Scans and decodes both splits of the image folder `root`, keeping every image in memory.
    ///
    /// - Parameters:
    ///   - limitPerClass: keep the first N training images of each class, in file-name order.
    ///   - testLimitPerClass: the same for the test split.
    ///   - threads: decoding threads.
    public static func load(root: String, limitPerClass: Int?, testLimitPerClass: Int?, threads: Int) throws -> TrainingData {
        try checkRoot(root)
        return try load(.imageFolder(root: root), limitPerClass: limitPerClass, testLimitPerClass: testLimitPerClass,
                 options: DataLoadOptions(threads: threads))
    }

    /// Throws a usage error when the image folder `root`, given as --data, does not exist or is a file.
    public static func checkRoot(_ root: String) throws {
        guard !ImageFolder.isFolder(root) else {
            return
        }
        guard FileManager.default.fileExists(atPath: root) else {
            throw UsageError("data folder \(root) does not exist; pass --data ROOT where ROOT contains train/ and test/ folders of class sub-folders")
        }
        throw UsageError("\(root) is a file, not a folder; pass the image folder that contains train/ and test/ folders of class sub-folders")
    }

    /// Throws the usage error that `load` raises when two split folders cannot be trained on
    /// together, because their class folders differ or there is only one class.
    public static func checkClasses(train trainFolder: ImageFolder, test testFolder: ImageFolder) throws {
        guard trainFolder.classNames == testFolder.classNames else {
            var differences: [String] = []
            for (folder, other) in [(trainFolder, testFolder), (testFolder, trainFolder)] {
                let otherNames = Set(other.classNames)
                let extra = folder.classNames.filter { !otherNames.contains($0) }
                if !extra.isEmpty {
                    let noun = extra.count == 1 ? "class folder" : "class folders"
                    differences.append("\(folder.directory) has \(noun) \(listNames(extra)) that \(other.directory) lacks")
                }
            }
            guard !differences.isEmpty else {
                throw normalFormMismatch(train: trainFolder, test: testFolder)
            }
            throw UsageError(differences.joined(separator: ", and ") + "; both splits need the same classes")
        }
        try checkClassCount(trainFolder)
    }

    /// Returns the error for splits whose class names are equal as Swift strings, which compare by
    /// canonical equivalence, but not as bytes. Folders sort by bytes, so the same class can sit
    /// at another position, and with it every label.
    static func normalFormMismatch(train trainFolder: ImageFolder, test testFolder: ImageFolder) -> UsageError {
        let testBytes = Set(testFolder.classNames.map { Array($0.utf8) })
        let respelled = trainFolder.classNames.filter { !testBytes.contains(Array($0.utf8)) }
        let noun = respelled.count == 1 ? "class folder" : "class folders"
        let verb = respelled.count == 1 ? "is" : "are"
        return UsageError("\(noun) \(listNames(respelled)) \(verb) spelled with other Unicode code points in "
            + "\(trainFolder.directory) than in \(testFolder.directory) (such as a precomposed é in one and e with a "
            + "combining accent in the other), so the two splits sort their classes differently; rename the folders so that "
            + "both splits use the same bytes")
    }

    /// Returns "a, b, c" for up to five names, and "a, b, c, d, e and 3 more" for longer lists.
    static func listNames(_ names: [String]) -> String {
        let firstNames = names.prefix(5).joined(separator: ", ")
        return names.count > 5 ? "\(firstNames) and \(names.count - 5) more" : firstNames
    }

    /// Scans the split folders of `source` without decoding any image, and throws the errors
    /// that `load` raises for their layout. CIFAR sources are not checked.
    public static func checkLayout(of source: DataSource) throws {
        guard case .folders(let trainPath, let testPath) = source else {
            return
        }
        try checkClasses(train: try ImageFolder(split: trainPath), test: try ImageFolder(split: testPath))
    }

    /// Throws a usage error when `folder` has a single class folder.
    public static func checkClassCount(_ folder: ImageFolder) throws {
        // With one class every kNN vote is right, so the accuracy would always read 100%.
        guard folder.classNames.count >= 2 else {
            throw UsageError("data folder \(folder.directory) contains a single class folder, \(folder.classNames[0]); the kNN evaluation needs at least two classes, so add another class folder to both train/ and test/")
        }
    }

    /// Reads both splits of `source`.
    ///
    /// Image folders are scanned in full before any dataset index is assigned. With `BadImagePolicy.fail`
    /// every file that fails to decode is named in one `DataError.badImages`. With `.skip` those files are
    /// left out and listed in `skippedFiles`. The limits apply to the files in name order (or CIFAR records
    /// in file order) before bad files are left out.
    public static func load(_ source: DataSource, limitPerClass: Int?, testLimitPerClass: Int?,
                            options: DataLoadOptions) throws -> TrainingData {
        switch source {
        case .cifar(let dataset, let directory):
            return TrainingData(train: try dataset.load(split: .train, from: directory, limitPerClass: limitPerClass),
                                test: try dataset.load(split: .test, from: directory, limitPerClass: testLimitPerClass))
        case .folders(let trainPath, let testPath):
            let trainFolder = try ImageFolder(split: trainPath, limitPerClass: limitPerClass)
            let testFolder = try ImageFolder(split: testPath, limitPerClass: testLimitPerClass)
            try checkClasses(train: trainFolder, test: testFolder)
            let scanOptions = ImageScanOptions(threads: options.threads, cacheBudget: options.cacheBudget)
            let trainScan = ImageFolderScan(folder: trainFolder, options: scanOptions)
            let testScan = ImageFolderScan(folder: testFolder, options: scanOptions)
            let badFiles = trainScan.badFiles + testScan.badFiles
            if options.badImagePolicy == .fail && !badFiles.isEmpty {
                throw DataError.badImages(files: badFiles)
            }
            return TrainingData(train: try trainScan.makeStore(), test: try testScan.makeStore(), skippedFiles: badFiles,
                                unreadFolders: trainFolder.unreadFolders + testFolder.unreadFolders)
        }
    }
}
