import Foundation

/// A fingerprint of the training images whose features fill a memory bank.
///
/// Row i of the bank is the feature of image i in dataset order. A folder with the same
/// classes and image counts but other files would pair the saved rows with the wrong
/// images. Every kNN vote, search match and resumed step would then be silently wrong. The fingerprint is the image count and a CRC-32C of each
/// image's class and file name, in dataset order, written as "COUNT:CRC". Folders above
/// the class folder are left out, so a dataset that was moved or copied still matches.
public enum TrainingImageList {
    /// Returns the fingerprint of `store`, or nil when its images have no file names (images
    /// held only in memory).
    public static func fingerprint(of store: ImageStore) -> String? {
        guard store.count > 0, store.paths.count == store.count else {
            return nil
        }
        var crc = CRC32C()
        for (path, label) in zip(store.paths, store.labels) {
            let fileName = path.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? path
            crc.update(store.classNames[label] + "/" + fileName + "\n")
        }
        return "\(store.count):\(Checkpoint.hexadecimal(crc.value))"
    }

    /// Returns the split folder of `store`'s images for messages: the folder above the
    /// first image's class folder.
    static func folder(of store: ImageStore) -> String {
        guard let first = store.paths.first else {
            return "the training split"
        }
        // Cut as text, so that a relative --data stays relative in the message.
        var components = first.split(separator: "/", omittingEmptySubsequences: false)
        components.removeLast(min(2, components.count))
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
        guard let saved = trainingImages, let current = TrainingImageList.fingerprint(of: store),
              saved != current else {
            return
        }
        throw UsageError("checkpoint \(path) contains memory bank rows of other images than \(TrainingImageList.folder(of: store)): the classes and image counts match, but the file names differ; \(advice)")
    }
}
