import Foundation

/// The list of images in a split folder laid out as `SPLIT/CLASS/FILE`, like torchvision's `ImageFolder`.
///
/// Dataset order: classes sorted by name, then files sorted by name inside each class, both compared
/// byte-wise on UTF-8 (the same as Python's `sorted` on `str`). The position of an image in `paths` is its
/// dataset index, fixed when the folder is scanned. Every entry directly inside a class folder whose name
/// ends in .jpg, .jpeg or .png (any letter case) counts unless it is a folder. Broken links and other
/// entries that are not regular files are kept, so the scan reports them as bad files. Names starting
/// with "." are ignored, and so are folders inside class folders, which `unreadFolders` lists, and
/// other files. `otherFormatFiles` lists the ignored files named as images of other formats.
public struct ImageFolder: Sendable {
    public let directory: String
    public let classNames: [String]
    public let paths: [String]
    public let labels: [Int]
    /// Paths of the folders directly inside class folders, sorted. Their images are not read.
    public let unreadFolders: [String]
    /// Paths of the files directly inside class folders whose names end in another image format's
    /// extension (see `otherImageExtensions`), sorted. They are not read.
    public let otherFormatFiles: [String]

    public var count: Int { paths.count }

    /// Scans `directory`.
    /// - Parameter limitPerClass: keeps only the first N images of each class in file-name order.
    /// - Throws: `DataError.missingFolder`, `.noClassFolders`, `.noImages`, `.emptyClassFolders`
    ///   when only some classes lack images, because torchvision rejects those too, `.invalidFileName`
    ///   for a folder or image whose name is not valid UTF-8, or `.unreadableFile` for a broken link
    ///   directly inside `directory`.
    public init(split directory: String, limitPerClass: Int? = nil) throws {
        if let limitPerClass {
            precondition(limitPerClass > 0, "limitPerClass must be positive, got \(limitPerClass)")
        }
        let directory = Self.trimTrailingSlashes(directory)
        guard Self.isFolder(directory) else {
            throw DataError.missingFolder(path: directory, otherCase: Self.folderDifferingInCase(from: directory))
        }

        let entries = try Self.listNames(in: directory).filter { !$0.hasPrefix(".") }
        // A broken link may stand for a class folder on a disk that is not mounted, so it is an
        // error rather than an entry to skip like a plain file.
        for name in entries {
            if let reason = Self.brokenLinkReason(directory + "/" + name) {
                throw DataError.unreadableFile(path: directory + "/" + name, reason: "broken symbolic link (\(reason))")
            }
        }
        let classNames = entries
            .filter { Self.isFolder(directory + "/" + $0) }
            .sorted(by: Self.bytewiseLess)
        guard !classNames.isEmpty else {
            throw DataError.noClassFolders(path: directory)
        }

        var paths: [String] = []
        var labels: [Int] = []
        var emptyClasses: [String] = []
        var unreadFolders: [String] = []
        var otherFormatFiles: [String] = []
        for (label, className) in classNames.enumerated() {
            let classFolder = directory + "/" + className
            let names = try Self.listNames(in: classFolder).filter { !$0.hasPrefix(".") }
            let folderNames = Set(names.filter { Self.isFolder(classFolder + "/" + $0) })
            unreadFolders.append(contentsOf: folderNames.map { classFolder + "/" + $0 })
            otherFormatFiles.append(contentsOf: names
                .filter { Self.isOtherImageFileName($0) && !folderNames.contains($0) }
                .map { classFolder + "/" + $0 })
            var files = names
                .filter { Self.isImageFileName($0) && !folderNames.contains($0) }
                .sorted(by: Self.bytewiseLess)
            if let limitPerClass, files.count > limitPerClass {
                files.removeSubrange(limitPerClass...)
            }
            if files.isEmpty {
                emptyClasses.append(className)
            }
            paths.append(contentsOf: files.map { classFolder + "/" + $0 })
            labels.append(contentsOf: repeatElement(label, count: files.count))
        }

        unreadFolders.sort(by: Self.bytewiseLess)
        otherFormatFiles.sort(by: Self.bytewiseLess)
        guard !paths.isEmpty else {
            throw DataError.noImages(path: directory, nestedFolder: unreadFolders.first)
        }
        guard emptyClasses.isEmpty else {
            let emptyFolders = Set(emptyClasses.map { directory + "/" + $0 })
            let nested = unreadFolders.first { emptyFolders.contains(Self.parentFolder(of: $0)) }
            throw DataError.emptyClassFolders(path: directory, classNames: emptyClasses, nestedFolder: nested)
        }

        self.directory = directory
        self.classNames = classNames
        self.paths = paths
        self.labels = labels
        self.unreadFolders = unreadFolders
        self.otherFormatFiles = otherFormatFiles
    }

    static func parentFolder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return String(path[..<slash])
    }

    static func isImageFileName(_ name: String) -> Bool {
        guard !name.hasPrefix(".") else { return false }
        let lowercased = name.lowercased()
        return lowercased.hasSuffix(".jpg") || lowercased.hasSuffix(".jpeg") || lowercased.hasSuffix(".png")
    }

    /// Extensions of image files that npid leaves out: common formats that npid does not decode,
    /// and .jfif and .jpe, rarer names of JPEG files.
    static let otherImageExtensions: Set<String> = [
        "avif", "bmp", "gif", "heic", "heif", "jfif", "jpe", "jxl", "pgm", "ppm", "tif", "tiff", "webp",
    ]

    static func isOtherImageFileName(_ name: String) -> Bool {
        guard !name.hasPrefix("."), let dot = name.lastIndex(of: ".") else { return false }
        return otherImageExtensions.contains(name[name.index(after: dot)...].lowercased())
    }

    static func bytewiseLess(_ left: String, _ right: String) -> Bool {
        left.utf8.lexicographicallyPrecedes(right.utf8)
    }

    /// Returns a folder beside `path` whose name differs from its last component only in letter
    /// case, such as ROOT/Train for ROOT/train, or nil when there is none.
    public static func folderDifferingInCase(from path: String) -> String? {
        let slash = path.lastIndex(of: "/")
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let prefix = slash.map { String(path[...$0]) } ?? ""
        guard let names = try? listNames(in: prefix.isEmpty ? "." : prefix) else {
            return nil
        }
        let match = names.sorted(by: bytewiseLess).first { other in
            other != name && other.lowercased() == name.lowercased() && isFolder(prefix + other)
        }
        return match.map { prefix + $0 }
    }

    static func trimTrailingSlashes(_ path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") {
            trimmed.removeLast()
        }
        return String(trimmed)
    }

    /// Returns the entry names of `folder` other than "." and "..", in no particular order.
    ///
    /// A name that is not valid UTF-8 cannot become a `String` path that opens the same file, so it
    /// would drop out of every later step.
    /// - Throws: `DataError.invalidFileName` for such a name when it is not hidden and names a folder
    ///   or an image file. Other such names are left out, like other files that are not images.
    static func listNames(in folder: String) throws -> [String] {
        guard let stream = opendir(folder) else {
            throw DataError.unreadableFile(path: folder, reason: String(cString: strerror(errno)))
        }
        defer { closedir(stream) }

        var names: [String] = []
        while let entry = readdir(stream) {
            let bytes = withUnsafeBytes(of: &entry.pointee.d_name) { name in Array(name.prefix { $0 != 0 }) }
            guard let name = String(validating: bytes, as: UTF8.self) else {
                let escaped = escapedName(bytes)
                if !escaped.hasPrefix(".") && (isImageFileName(escaped) || isFolder(entryBytes: bytes, in: stream)) {
                    throw DataError.invalidFileName(folder: folder, name: escaped)
                }
                continue
            }
            if name != "." && name != ".." {
                names.append(name)
            }
        }
        return names
    }

    /// Returns the name with each byte that is not part of valid UTF-8 written as \xHH.
    static func escapedName(_ bytes: [UInt8]) -> String {
        var result = ""
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                result.unicodeScalars.append(Unicode.UTF8.decode(encoded))
                offset += encoded.count
            case .error(let length):
                for byte in bytes[offset..<(offset + length)] {
                    result += String(format: "\\x%02X", byte)
                }
                offset += length
            case .emptyInput:
                return result
            }
        }
    }

    /// Returns whether the entry `bytes` of the folder open as `stream` is a folder, following links.
    private static func isFolder(entryBytes bytes: [UInt8], in stream: OpaquePointer) -> Bool {
        var status = stat()
        let found = (bytes + [0]).withUnsafeBufferPointer { name in
            name.withMemoryRebound(to: CChar.self) { fstatat(dirfd(stream), $0.baseAddress!, &status, 0) == 0 }
        }
        return found && (status.st_mode & S_IFMT) == S_IFDIR
    }

    /// Returns the error of following `path` when it is a symbolic link whose target cannot be
    /// reached, or nil for any other path.
    static func brokenLinkReason(_ path: String) -> String? {
        var status = stat()
        guard lstat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFLNK else { return nil }
        guard stat(path, &status) != 0 else { return nil }
        return String(cString: strerror(errno))
    }

    /// Returns whether `path` is a folder, following symbolic links.
    static func isFolder(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
    }

    /// Returns whether `path` is a regular file, following symbolic links.
    static func isRegularFile(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFREG
    }
}
