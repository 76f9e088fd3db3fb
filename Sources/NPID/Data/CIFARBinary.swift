import Foundation

/// The train or test split of a dataset.
public enum DataSplit: String, Sendable, CaseIterable {
    case train, test
}

/// CIFAR-10 and CIFAR-100 in the binary format of their official archives (Krizhevsky, 2009).
///
/// Each record is the label byte(s) followed by a 32×32 image as three 1024-byte planes, red, green
/// and blue, each row-major. CIFAR-10 records have one label byte; CIFAR-100 records have two, the coarse
/// (superclass) label and then the fine label, which is the one used here.
public enum CIFARDataset: String, Sendable, CaseIterable {
    case cifar10, cifar100

    /// The folder the official archive extracts to.
    public var folderName: String {
        switch self {
        case .cifar10: return "cifar-10-batches-bin"
        case .cifar100: return "cifar-100-binary"
        }
    }

    public var displayName: String {
        switch self {
        case .cifar10: return "CIFAR-10"
        case .cifar100: return "CIFAR-100"
        }
    }

    /// Batch files of a split, in the order their records get dataset indices.
    public func batchFiles(_ split: DataSplit) -> [String] {
        switch (self, split) {
        case (.cifar10, .train): return (1...5).map { "data_batch_\($0).bin" }
        case (.cifar10, .test): return ["test_batch.bin"]
        case (.cifar100, .train): return ["train.bin"]
        case (.cifar100, .test): return ["test.bin"]
        }
    }

    /// The text file with one class name per line, line i naming label i.
    public var classNamesFile: String {
        switch self {
        case .cifar10: return "batches.meta.txt"
        case .cifar100: return "fine_label_names.txt"
        }
    }

    public var classCount: Int { self == .cifar10 ? 10 : 100 }

    /// Label bytes before the pixels of each record; the last one is the label used.
    var labelByteCount: Int { self == .cifar10 ? 1 : 2 }

    static let pixelByteCount = 3 * 32 * 32

    var recordByteCount: Int { labelByteCount + Self.pixelByteCount }

    /// Every file a complete extracted archive must contain for training and evaluation.
    public var requiredFiles: [String] {
        batchFiles(.train) + batchFiles(.test) + [classNamesFile]
    }

    /// The official archive, from the dataset's page (https://www.cs.toronto.edu/~kriz/cifar.html).
    public var officialArchive: DatasetArchive {
        switch self {
        case .cifar10:
            return DatasetArchive(url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                                  md5: "c32a1d4ab5d03f1284b67883e8d87530", fileName: "cifar-10-binary.tar.gz",
                                  folderName: folderName, requiredFiles: requiredFiles)
        case .cifar100:
            return DatasetArchive(url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
                                  md5: "03b5dce01913d631647c71ecec9e9cb8", fileName: "cifar-100-binary.tar.gz",
                                  folderName: folderName, requiredFiles: requiredFiles)
        }
    }

    /// Returns the folder with the batch files: `directory` itself when it contains them, else
    /// `directory/folderName`; nil when neither is complete.
    public func locate(in directory: String) -> String? {
        let directory = ImageFolder.trimTrailingSlashes(directory)
        for candidate in [directory, directory + "/" + folderName] where missingFiles(in: candidate).isEmpty {
            return candidate
        }
        return nil
    }

    func missingFiles(in folder: String) -> [String] {
        requiredFiles.filter { !ImageFolder.isRegularFile(folder + "/" + $0) }
    }

    /// Reads one split from `directory` (the extracted archive folder or its parent) into memory.
    ///
    /// Dataset order is the record order of the batch files, taken in `batchFiles(split)` order.
    /// - Parameter limitPerClass: keeps only the first N records of each class.
    /// - Throws: `DataError.missingCIFARFiles` when a file is missing, `.malformedCIFARFile` when a
    ///   file's size is not a whole number of records or a label is out of range.
    public func load(split: DataSplit, from directory: String, limitPerClass: Int? = nil) throws -> ImageStore {
        if let limitPerClass {
            precondition(limitPerClass > 0, "limitPerClass must be positive, got \(limitPerClass)")
        }
        guard let folder = locate(in: directory) else {
            let trimmed = ImageFolder.trimTrailingSlashes(directory)
            guard ImageFolder.isFolder(trimmed) else {
                // No file list: the folder itself is what is missing.
                throw DataError.missingCIFARFiles(folder: trimmed, dataset: displayName, missing: [])
            }
            let nested = trimmed + "/" + folderName
            let reported = ImageFolder.isFolder(nested) ? nested : trimmed
            throw DataError.missingCIFARFiles(folder: reported, dataset: displayName,
                                              missing: missingFiles(in: reported))
        }
        let classNames = try readClassNames(folder + "/" + classNamesFile)

        var images: [RGBImage] = []
        var labels: [Int] = []
        var paths: [String] = []
        var perClass = [Int](repeating: 0, count: classCount)
        for file in batchFiles(split) {
            let path = folder + "/" + file
            let bytes = try ImageDecoder.readFile(atPath: path)
            guard !bytes.isEmpty, bytes.count % recordByteCount == 0 else {
                throw DataError.malformedCIFARFile(
                    path: path, reason: "its size of \(bytes.count) bytes is not a whole number of "
                        + "\(recordByteCount)-byte \(displayName) records")
            }
            try bytes.withUnsafeBufferPointer { buffer in
                for record in 0..<(bytes.count / recordByteCount) {
                    let start = buffer.baseAddress! + record * recordByteCount
                    let label = Int(start[labelByteCount - 1])
                    guard label < classCount else {
                        throw DataError.malformedCIFARFile(
                            path: path, reason: "record \(record) has label \(label), but \(displayName) "
                                + "has \(classCount) classes")
                    }
                    if let limitPerClass, perClass[label] >= limitPerClass {
                        continue
                    }
                    perClass[label] += 1
                    images.append(Self.interleave(planes: start + labelByteCount))
                    labels.append(label)
                    paths.append("\(path)[\(record)]")
                }
            }
        }
        return ImageStore(images: images, labels: labels, classNames: classNames, paths: paths)
    }

    /// Reads the class names: one per line, surrounding white space removed, blank lines ignored.
    func readClassNames(_ path: String) throws -> [String] {
        let bytes = try ImageDecoder.readFile(atPath: path)
        let names = String(decoding: bytes, as: UTF8.self)
            .split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        guard names.count == classCount else {
            throw DataError.malformedCIFARFile(
                path: path, reason: "it names \(names.count) classes, but \(displayName) has \(classCount)")
        }
        return names
    }

    /// Converts the three 32×32 colour planes of a record into an interleaved RGB image.
    static func interleave(planes: UnsafePointer<UInt8>) -> RGBImage {
        let planeSize = 32 * 32
        let pixels = [UInt8](unsafeUninitializedCapacity: pixelByteCount) { buffer, initializedCount in
            for pixel in 0..<planeSize {
                buffer[pixel * 3] = planes[pixel]
                buffer[pixel * 3 + 1] = planes[planeSize + pixel]
                buffer[pixel * 3 + 2] = planes[2 * planeSize + pixel]
            }
            initializedCount = pixelByteCount
        }
        return RGBImage(width: 32, height: 32, pixels: pixels)
    }
}
