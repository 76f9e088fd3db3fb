import Foundation

/// A failure while scanning an image folder or decoding an image file.
public enum DataError: Error, CustomStringConvertible, LocalizedError, Equatable {
    /// The split folder (for example ROOT/train) does not exist or is not a folder.
    case missingFolder(path: String)
    /// The split folder exists but contains no class sub-folders.
    case noClassFolders(path: String)
    /// Some class sub-folders contain no .jpg, .jpeg or .png files.
    case emptyClassFolders(path: String, classNames: [String])
    /// No class sub-folder contains a .jpg, .jpeg or .png file.
    case noImages(path: String)
    /// The file could not be opened or read.
    case unreadableFile(path: String, reason: String)
    /// The file starts like a JPEG or PNG image, but the decoder rejected it.
    case corruptImage(path: String, message: String)
    /// The file is neither a JPEG nor a PNG image, judged by its leading bytes.
    case unsupportedFormat(path: String)
    /// The image header declares more pixels than `ImageDecoder.maxPixelCount`.
    case imageTooLarge(path: String, width: Int, height: Int)

    public var description: String {
        switch self {
        case .missingFolder(let path):
            return "data folder \(path) does not exist or is not a folder; "
                + "pass --data ROOT where ROOT contains train/ and test/ folders with one sub-folder per class"
        case .noClassFolders(let path):
            return "data folder \(path) contains no class sub-folders; "
                + "put the images of each class in their own sub-folder, such as \(path)/cat/0001.jpg"
        case .emptyClassFolders(let path, let classNames):
            let list = classNames.joined(separator: ", ")
            let single = classNames.count == 1
            let noun = single ? "class folder" : "class folders"
            let verb = single ? "contains" : "contain"
            let pronoun = single ? "it" : "them"
            return "\(noun) \(list) in \(path) \(verb) no .jpg, .jpeg or .png files; "
                + "add images to \(pronoun) or remove \(pronoun)"
        case .noImages(let path):
            return "data folder \(path) contains no .jpg, .jpeg or .png files in its class sub-folders; "
                + "check that --data points at the right folder"
        case .unreadableFile(let path, let reason):
            return "cannot read \(path): \(reason); check that the file exists and is readable"
        case .corruptImage(let path, let message):
            return "cannot decode image \(path) (\(message)); replace or delete the file"
        case .unsupportedFormat(let path):
            return "file \(path) is not a JPEG or PNG image (unrecognised leading bytes); "
                + "convert it to JPEG or PNG or delete it"
        case .imageTooLarge(let path, let width, let height):
            return "image \(path) declares \(width)x\(height) pixels, more than the limit of "
                + "\(ImageDecoder.maxPixelCount) pixels; shrink it or delete it"
        }
    }

    public var errorDescription: String? { description }
}
