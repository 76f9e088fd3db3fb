import Foundation

/// A failure while scanning an image folder or decoding an image file.
public enum DataError: Error, CustomStringConvertible, LocalizedError, Equatable {
    /// The split folder (for example ROOT/train) does not exist or is not a folder.
    /// `otherCase` is a folder beside it whose name differs only in letter case (ROOT/Train).
    case missingFolder(path: String, otherCase: String? = nil)
    /// The split folder exists but contains no class sub-folders.
    case noClassFolders(path: String)
    /// Some class sub-folders contain no .jpg, .jpeg or .png files. `nestedFolder` is a folder
    /// inside one of them, whose images are not read.
    case emptyClassFolders(path: String, classNames: [String], nestedFolder: String? = nil)
    /// No class sub-folder contains a .jpg, .jpeg or .png file. `nestedFolder` is a folder inside
    /// a class folder, whose images are not read.
    case noImages(path: String, nestedFolder: String? = nil)
    /// The file could not be opened or read.
    case unreadableFile(path: String, reason: String)
    /// A folder or image file in `folder` has a name that is not valid UTF-8. `name` shows the
    /// invalid bytes as \xHH.
    case invalidFileName(folder: String, name: String)
    /// The file starts like a JPEG or PNG image, but the decoder rejected it.
    case corruptImage(path: String, message: String)
    /// The file is neither a JPEG nor a PNG image, judged by its leading bytes.
    case unsupportedFormat(path: String)
    /// The image header declares more pixels than `ImageDecoder.maxPixelCount`.
    case imageTooLarge(path: String, width: Int, height: Int)
    /// Image files that failed to decode when the folder was scanned, in dataset order.
    case badImages(files: [BadImageFile])
    /// Every image of these classes failed to decode, so skipping the bad files leaves them empty.
    case noReadableImages(path: String, classNames: [String])
    /// The folder lacks files of an extracted CIFAR binary archive, or does not exist (no files listed).
    case missingCIFARFiles(folder: String, dataset: String, missing: [String])
    /// A CIFAR batch or class-name file does not have the official layout.
    case malformedCIFARFile(path: String, reason: String)

    public var description: String {
        switch self {
        case .missingFolder(let path, nil):
            return "data folder \(path) does not exist or is not a folder; "
                + "pass --data ROOT where ROOT contains train/ and test/ folders with one sub-folder per class"
        case .missingFolder(let path, let otherCase?):
            return "data folder \(path) does not exist, but \(otherCase) does, and npid reads the split folders "
                + "train/ and test/ in lower case; rename the split folders, or pass them with --train-dir and --test-dir"
        case .noClassFolders(let path):
            return "data folder \(path) contains no class sub-folders; "
                + "put the images of each class in their own sub-folder, such as \(path)/cat/0001.jpg"
        case .emptyClassFolders(let path, let classNames, let nestedFolder):
            let list = classNames.joined(separator: ", ")
            let single = classNames.count == 1
            let noun = single ? "class folder" : "class folders"
            let verb = single ? "contains" : "contain"
            let pronoun = single ? "it" : "them"
            let nested = nestedFolder.map { " (folders inside class folders, such as \($0), are not read)" } ?? ""
            return "\(noun) \(list) in \(path) \(verb) no .jpg, .jpeg or .png files\(nested); "
                + "add images to \(pronoun) or remove \(pronoun)"
        case .noImages(let path, nil):
            return "data folder \(path) contains no .jpg, .jpeg or .png files in its class sub-folders; "
                + "check that this is the folder you meant"
        case .noImages(let path, let nestedFolder?):
            return "data folder \(path) contains no .jpg, .jpeg or .png files directly in its class sub-folders, "
                + "and folders inside them, such as \(nestedFolder), are not read; "
                + "move each class's images directly into its class folder, as in \(path)/CLASS/IMAGE.jpg"
        case .unreadableFile(let path, let reason):
            return "cannot read \(path): \(reason); check that the file exists and is readable"
        case .invalidFileName(let folder, let name):
            return "file name \(name) in \(folder) is not valid UTF-8, and npid reads only UTF-8 file names; rename it"
        case .corruptImage(let path, let message):
            return "cannot decode image \(path) (\(message)); replace or delete the file"
        case .unsupportedFormat(let path):
            return "file \(path) is not a JPEG or PNG image (unrecognised leading bytes); "
                + "convert it to JPEG or PNG or delete it"
        case .imageTooLarge(let path, let width, let height):
            return "image \(path) declares \(width)x\(height) pixels, more than the limit of "
                + "\(ImageDecoder.maxPixelCount) pixels; shrink it or delete it"
        case .badImages(let files):
            return Self.describeBadImages(files)
        case .noReadableImages(let path, let classNames):
            let noun = classNames.count == 1 ? "class folder" : "class folders"
            return "every image of \(noun) \(classNames.joined(separator: ", ")) in \(path) failed to decode, "
                + "so none is left after skipping bad files; replace the files or remove the \(noun)"
        case .missingCIFARFiles(let folder, let dataset, let missing) where missing.isEmpty:
            return "folder \(folder) does not exist; pass --data the folder where the official \(dataset) "
                + "binary archive was extracted, or add --download to fetch it"
        case .missingCIFARFiles(let folder, let dataset, let missing):
            return "folder \(folder) does not contain the \(dataset) binary files "
                + "(missing \(missing.joined(separator: ", "))); pass --data the folder where the official "
                + "binary archive was extracted, or add --download to fetch it"
        case .malformedCIFARFile(let path, let reason):
            return "CIFAR file \(path) is malformed: \(reason); extract the official binary archive again "
                + "or fetch it with --download"
        }
    }

    /// A short reason for one file in a list of bad files, without the path or advice.
    public var reason: String {
        switch self {
        case .unreadableFile(_, let reason): return "unreadable: \(reason)"
        case .corruptImage(_, let message): return message
        case .unsupportedFormat: return "not a JPEG or PNG image"
        case .imageTooLarge(_, let width, let height): return "\(width)x\(height) pixels, over the limit"
        default: return description
        }
    }

    /// At most this many bad files are named in one message; `npid check-data` lists them all.
    static let listedBadFileCount = 20

    static func describeBadImages(_ files: [BadImageFile]) -> String {
        if files.count == 1 {
            return files[0].error.description + ", or pass --on-bad-image skip to leave it out"
        }
        return "\(files.count) image files failed to decode: \(listBadFiles(files)); "
            + "replace or delete them, or pass --on-bad-image skip to leave them out"
    }

    /// Returns "PATH (reason), ..." for the first `listedBadFileCount` files and a count of the rest.
    public static func listBadFiles(_ files: [BadImageFile]) -> String {
        var list = files.prefix(listedBadFileCount).map { "\($0.path) (\($0.error.reason))" }.joined(separator: ", ")
        if files.count > listedBadFileCount {
            list += " and \(files.count - listedBadFileCount) more (npid check-data lists them all)"
        }
        return list
    }

    public var errorDescription: String? { description }
}

/// An image file that failed to decode when its folder was scanned.
public struct BadImageFile: Sendable, Equatable {
    public let path: String
    public let error: DataError

    public init(path: String, error: DataError) {
        self.path = path
        self.error = error
    }
}
