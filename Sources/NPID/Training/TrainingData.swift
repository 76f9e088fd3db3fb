import Foundation

/// The train and test splits of an image folder, decoded into memory.
///
/// Layout: `ROOT/train/CLASS/*.{jpg,jpeg,png}` and `ROOT/test/CLASS/...`. Both splits
/// must have the same class folders, because the kNN vote compares their labels.
public struct TrainingData: Sendable {
    public let train: ImageStore
    public let test: ImageStore
    public var classNames: [String] { train.classNames }

    public init(train: ImageStore, test: ImageStore) {
        self.train = train
        self.test = test
    }

    /// Scans and decodes both splits of `root`.
    ///
    /// - Parameters:
    ///   - limitPerClass: keep the first N training images of each class, in file-name order.
    ///   - testLimitPerClass: the same for the test split.
    ///   - threads: decoding threads.
    public static func load(root: String, limitPerClass: Int?, testLimitPerClass: Int?, threads: Int) throws -> TrainingData {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isFolder), isFolder.boolValue else {
            throw UsageError("data folder \(root) does not exist; pass --data ROOT where ROOT contains train/ and test/ folders of class sub-folders")
        }
        let trainFolder = try ImageFolder(split: root + "/train", limitPerClass: limitPerClass)
        let testFolder = try ImageFolder(split: root + "/test", limitPerClass: testLimitPerClass)
        guard trainFolder.classNames == testFolder.classNames else {
            throw UsageError("\(root)/train and \(root)/test have different class folders (\(trainFolder.classNames.count) and \(testFolder.classNames.count)); both splits need the same classes")
        }
        // With one class every kNN vote is right, so the accuracy would always read 100%.
        guard trainFolder.classNames.count >= 2 else {
            throw UsageError("data folder \(root)/train contains a single class folder, \(trainFolder.classNames[0]); the kNN evaluation needs at least two classes, so add another class folder to both train/ and test/")
        }
        return TrainingData(train: try ImageStore(folder: trainFolder, threads: threads),
                            test: try ImageStore(folder: testFolder, threads: threads))
    }
}
