import Foundation

/// A fingerprint of the training images whose features fill a memory bank.
///
/// Row i of the bank is the feature of image i in dataset order. A folder with the same
/// classes and image counts but other files would pair the saved rows with the wrong
/// images. Every kNN vote, search match and resumed step would then be silently wrong.
///
/// The fingerprint is a CRC-32C over each image's class, file name and size in bytes, in
/// dataset order, written as "2/COUNT:CRC". Folders above the class folder are left out, so
/// a dataset that was moved or copied still matches. The size distinguishes splits whose files
/// share names (CIFAR-10's train/cat/0000.jpg and test/cat/0000.jpg). Version 1, "COUNT:CRC"
/// without sizes, is still compared as written.
public enum TrainingImageList {
    /// Returns the fingerprint of `store`, or nil when its images have no file names (images
    /// held only in memory).
    public static func fingerprint(of store: ImageStore) -> String? {
        guard store.paths.count == store.count else {
            return nil
        }
        return fingerprint(paths: store.paths, labels: store.labels, classNames: store.classNames)
    }

    /// Returns the fingerprint of `paths` in the version of `saved`, a stored fingerprint
    /// (the current version when nil), so that the two compare.
    static func fingerprint(paths: [String], labels: [Int], classNames: [String], like saved: String? = nil) -> String? {
        guard !paths.isEmpty else {
            return nil
        }
        let withSizes = saved.map { $0.hasPrefix("2/") } ?? true
        var crc = CRC32C()
        for (path, label) in zip(paths, labels) {
            let fileName = path.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? path
            guard withSizes else {
                crc.update(classNames[label] + "/" + fileName + "\n")
                continue
            }
            // CIFAR records ("data_batch_1.bin[7]") are not files, and their names are already unique.
            var status = stat()
            let size = stat(path, &status) == 0 ? String(status.st_size) : "-"
            crc.update(classNames[label] + "/" + fileName + " " + size + "\n")
        }
        let value = "\(paths.count):\(Checkpoint.hexadecimal(crc.value))"
        return withSizes ? "2/" + value : value
    }

    /// Returns the split folder of `paths` for messages: the folder above the first image's
    /// class folder, or for CIFAR records ("FOLDER/data_batch_1.bin[7]") the folder of the
    /// batch files.
    static func folder(of paths: [String]) -> String {
        guard let first = paths.first else {
            return "the training split"
        }
        // Cut as text, so that a relative --data stays relative in the message.
        var components = first.split(separator: "/", omittingEmptySubsequences: false)
        let isCIFARRecord = components.last.map { $0.hasSuffix("]") && $0.contains(".bin[") } ?? false
        components.removeLast(min(isCIFARRecord ? 1 : 2, components.count))
        let folder = components.joined(separator: "/")
        if !folder.isEmpty {
            return folder
        }
        return first.hasPrefix("/") ? "/" : "."
    }
}

extension Checkpoint {
    /// Checks that the memory bank's rows belong to the images of `store`. Checkpoints
    /// written before the fingerprint was saved, and stores without file names, pass.
    /// - Parameter advice: what to do instead, ending the message.
    public func checkTrainingImages(_ store: ImageStore, path: String, advice: String) throws {
        guard store.paths.count == store.count else {
            return
        }
        try checkTrainingImages(paths: store.paths, labels: store.labels, classNames: store.classNames,
                                path: path, advice: advice)
    }

    func checkTrainingImages(paths: [String], labels: [Int], classNames: [String], path: String,
                             advice: String) throws {
        guard let saved = trainingImages,
              let current = TrainingImageList.fingerprint(paths: paths, labels: labels, classNames: classNames, like: saved),
              saved != current else {
            return
        }
        throw UsageError("checkpoint \(path) contains memory bank rows of other images than \(TrainingImageList.folder(of: paths)): the classes and image counts match, but the file names or sizes differ; \(advice)")
    }

    /// Checks that a run resumed from this checkpoint trains on the images it was trained on:
    /// as many images as bank rows, the same classes and the same file names and sizes.
    /// - Parameters:
    ///   - paths: the training images' files in dataset order, or none for images held in memory.
    ///   - labels: the class index of each of `paths`.
    public func checkResumable(imageCount: Int, paths: [String], labels: [Int], classNames: [String],
                               path: String) throws {
        let rowCount = memoryBank.shape[0]
        guard rowCount == imageCount else {
            // A run with --on-bad-image skip has fewer rows than the folder has image files,
            // and the launcher of --nproc counts files without decoding them.
            let skipAdvice = rowCount < imageCount ? ", and with --on-bad-image skip if the run left out images that did not decode" : ""
            throw UsageError("checkpoint \(path) has a memory bank of \(rowCount) rows, but the data has \(imageCount) training images; resume with the same --data and --limit-per-class\(skipAdvice)")
        }
        // Bank rows are images by index, so a folder with other classes would pair them with wrong files.
        try checkClassNames(classNames, path: path)
        guard paths.count == imageCount else {
            return
        }
        try checkTrainingImages(paths: paths, labels: labels, classNames: classNames, path: path,
                                advice: "resume with the data folder the run trained on, or start a new run on these images")
    }

    /// Checks, before any image is decoded, that `folder` is the training split of this
    /// checkpoint's run, as `checkResumable(imageCount:)` does once the images are loaded.
    public func checkResumable(onFolder folder: ImageFolder, path: String) throws {
        try checkResumable(imageCount: folder.count, paths: folder.paths, labels: folder.labels,
                           classNames: folder.classNames, path: path)
    }
}
