import CImageCodecs
import Foundation
import Testing
@testable import NPID

@Suite struct ImageFolderTests {
    /// Writes `files` (relative paths) with placeholder bytes, in the given order.
    private func makeFolder(_ files: [String]) throws -> String {
        let root = try TestImages.makeTemporaryFolder()
        for file in files {
            try TestImages.write([0], to: root + "/" + file)
        }
        return root
    }

    @Test func folderOrdersClassesAndFiles() throws {
        // Created out of order; byte-wise order puts "C" before "a" and "1.JPG" < "10.png" < "2.jpg".
        let root = try makeFolder([
            "b/2.jpg", "b/10.png", "b/1.JPG",
            "a/z.jpeg", "a/.hidden.jpg", "a/notes.txt", "a/y.PNG",
            "C/only.jpg",
            ".git/x.jpg",
        ])
        defer { TestImages.removeFolder(root) }
        try FileManager.default.createDirectory(atPath: root + "/a/folder.jpg", withIntermediateDirectories: true)

        let folder = try ImageFolder(split: root + "/")

        #expect(folder.directory == root)
        #expect(folder.classNames == ["C", "a", "b"])
        #expect(folder.paths == [
            root + "/C/only.jpg",
            root + "/a/y.PNG", root + "/a/z.jpeg",
            root + "/b/1.JPG", root + "/b/10.png", root + "/b/2.jpg",
        ])
        #expect(folder.labels == [0, 1, 1, 2, 2, 2])
        #expect(folder.count == 6)
    }

    /// Splits with different classes are rejected naming the class folders each split lacks,
    /// at most five per split.
    @Test func differentSplitClassesAreNamed() throws {
        let trainClasses = ["a", "b", "c", "d", "e", "f", "g"]
        let root = try makeFolder(trainClasses.map { "train/\($0)/1.jpg" } + ["test/a/1.jpg", "test/z/1.jpg"])
        defer { TestImages.removeFolder(root) }
        let train = try ImageFolder(split: root + "/train")
        let test = try ImageFolder(split: root + "/test")

        let error = #expect(throws: UsageError.self) {
            try TrainingData.checkClasses(train: train, test: test)
        }

        #expect(error?.message == "\(root)/train has class folders b, c, d, e, f and 1 more that \(root)/test lacks, and \(root)/test has class folder z that \(root)/train lacks; both splits need the same classes")
    }

    /// Swift compares strings by canonical equivalence, but the folders sort by their bytes, so
    /// "café" written precomposed (NFC) in one split and decomposed (NFD) in the other matches as a
    /// name yet may sort to another position. The error must name it instead of listing nothing.
    @Test func classInOtherNormalFormIsNamed() throws {
        let composed = "caf\u{E9}"
        let decomposed = "cafe\u{301}"
        let root = try makeFolder(["train/caff/1.jpg", "train/\(composed)/1.jpg", "test/caff/1.jpg", "test/\(decomposed)/1.jpg"])
        defer { TestImages.removeFolder(root) }
        let train = try ImageFolder(split: root + "/train")
        let test = try ImageFolder(split: root + "/test")
        #expect(train.classNames.map { Array($0.utf8) } == [Array("caff".utf8), Array(composed.utf8)])
        #expect(test.classNames.map { Array($0.utf8) } == [Array(decomposed.utf8), Array("caff".utf8)])

        let error = #expect(throws: UsageError.self) {
            try TrainingData.checkClasses(train: train, test: test)
        }

        #expect(error?.message == "class folder \(composed) is spelled with other Unicode code points in \(root)/train than in \(root)/test (such as a precomposed é in one and e with a combining accent in the other), so the two splits sort their classes differently; rename the folders so that both splits use the same bytes")
    }

    @Test func missingSplitClassIsNamed() throws {
        let root = try makeFolder(["train/cat/1.jpg", "train/dog/1.jpg", "test/cat/1.jpg"])
        defer { TestImages.removeFolder(root) }

        let error = #expect(throws: UsageError.self) {
            try TrainingData.checkLayout(of: .imageFolder(root: root))
        }

        #expect(error?.message == "\(root)/train has class folder dog that \(root)/test lacks; both splits need the same classes")
    }

    @Test func limitPerClassKeepsFirstFiles() throws {
        let root = try makeFolder(["cat/3.jpg", "cat/1.jpg", "cat/2.jpg", "dog/9.png", "dog/8.png"])
        defer { TestImages.removeFolder(root) }

        let folder = try ImageFolder(split: root, limitPerClass: 2)

        #expect(folder.paths == [root + "/cat/1.jpg", root + "/cat/2.jpg", root + "/dog/8.png", root + "/dog/9.png"])
        #expect(folder.labels == [0, 0, 1, 1])
    }

    @Test func missingFolderErrorNamesPath() {
        let path = "/nonexistent-npid-root/train"
        #expect(throws: DataError.missingFolder(path: path)) {
            try ImageFolder(split: path)
        }
        let message = DataError.missingFolder(path: path).description
        #expect(message.contains(path))
        #expect(message.contains("--data"))
    }

    @Test func fileInsteadOfFolderThrowsMissing() throws {
        let root = try makeFolder(["train"])
        defer { TestImages.removeFolder(root) }

        #expect(throws: DataError.missingFolder(path: root + "/train")) {
            try ImageFolder(split: root + "/train")
        }
    }

    @Test func folderWithoutClassesThrows() throws {
        let root = try makeFolder(["loose.jpg"])
        defer { TestImages.removeFolder(root) }

        #expect(throws: DataError.noClassFolders(path: root)) {
            try ImageFolder(split: root)
        }
        #expect(DataError.noClassFolders(path: root).description.contains(root))
    }

    @Test func classesWithoutImagesThrowNoImages() throws {
        let root = try makeFolder(["cat/readme.txt", "dog/.hidden.png"])
        defer { TestImages.removeFolder(root) }

        #expect(throws: DataError.noImages(path: root)) {
            try ImageFolder(split: root)
        }
        #expect(DataError.noImages(path: root).description.contains(root))
    }

    @Test func emptyClassFoldersAreNamed() throws {
        let root = try makeFolder(["cat/1.jpg", "dog/readme.txt", "emu/notes.md"])
        defer { TestImages.removeFolder(root) }

        #expect(throws: DataError.emptyClassFolders(path: root, classNames: ["dog", "emu"])) {
            try ImageFolder(split: root)
        }
        let message = DataError.emptyClassFolders(path: root, classNames: ["dog", "emu"]).description
        #expect(message.contains("dog, emu"))
        #expect(message.contains(root))
    }

    /// Folders inside class folders are listed, not read; hidden ones are not listed.
    @Test func nestedFoldersAreListedNotRead() throws {
        let root = try makeFolder(["cat/1.jpg", "cat/2019/2.jpg", "cat/a/3.jpg", "cat/.cache/4.jpg", "dog/5.jpg"])
        defer { TestImages.removeFolder(root) }

        let folder = try ImageFolder(split: root)

        #expect(folder.paths == [root + "/cat/1.jpg", root + "/dog/5.jpg"])
        #expect(folder.unreadFolders == [root + "/cat/2019", root + "/cat/a"])
    }

    /// Files named as images of other formats are listed, but other files and hidden ones are not.
    @Test func otherImageFormatsAreListed() throws {
        let root = try makeFolder([
            "cat/1.jpg", "cat/2.HEIC", "cat/3.webp", "cat/notes.txt", "cat/.4.gif",
            "dog/5.png", "dog/6.gif", "dog/7.jfif", "dog/gif",
        ])
        defer { TestImages.removeFolder(root) }

        let folder = try ImageFolder(split: root)

        #expect(folder.paths == [root + "/cat/1.jpg", root + "/dog/5.png"])
        #expect(folder.otherFormatFiles == [
            root + "/cat/2.HEIC", root + "/cat/3.webp", root + "/dog/6.gif", root + "/dog/7.jfif",
        ])
    }

    /// An empty class folder that contains a folder names it, since that is the likely cause.
    @Test func emptyClassNamesNestedFolder() throws {
        let root = try makeFolder(["cat/1.jpg", "dog/2019/2.jpg", "emu/notes.md"])
        defer { TestImages.removeFolder(root) }

        let expected = DataError.emptyClassFolders(path: root, classNames: ["dog", "emu"], nestedFolder: root + "/dog/2019")
        #expect(throws: expected) {
            try ImageFolder(split: root)
        }
        #expect(expected.description == "class folders dog, emu in \(root) contain no .jpg, .jpeg or .png files (folders inside class folders, such as \(root)/dog/2019, are not read); add images to them or remove them")
    }

    /// A folder with one level too many (SPLIT/GROUP/CLASS/FILE) is rejected naming a deeper folder.
    @Test func extraFolderLevelNamesNestedFolder() throws {
        let root = try makeFolder(["animals/cat/1.jpg", "animals/dog/2.jpg"])
        defer { TestImages.removeFolder(root) }

        let expected = DataError.noImages(path: root, nestedFolder: root + "/animals/cat")
        #expect(throws: expected) {
            try ImageFolder(split: root)
        }
        #expect(expected.description == "data folder \(root) contains no .jpg, .jpeg or .png files directly in its class sub-folders, and folders inside them, such as \(root)/animals/cat, are not read; move each class's images directly into its class folder, as in \(root)/CLASS/IMAGE.jpg")
    }

    /// A Swift string cannot hold a file name that is not valid UTF-8, so the scan must stop with
    /// the name's bytes shown rather than leave the image out.
    @Test func nonUTF8FileNameIsRejected() throws {
        let root = try makeFolder(["cat/1.jpg", "dog/1.jpg"])
        defer { TestImages.removeFolder(root) }
        // "caf\xE9.jpg": é in Latin-1, as older tools on Linux write it.
        let name: [UInt8] = Array("caf".utf8) + [0xE9] + Array(".jpg".utf8)
        let rawPath = Array((root + "/cat/").utf8) + name + [0]
        let descriptor = rawPath.withUnsafeBufferPointer { path in
            path.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_WRONLY | O_CREAT, 0o600) }
        }
        #expect(descriptor >= 0)
        close(descriptor)

        let error = #expect(throws: DataError.self) {
            try ImageFolder(split: root)
        }
        #expect(error == .invalidFileName(folder: root + "/cat", name: "caf\\xE9.jpg"))
        #expect(error?.description == "file name caf\\xE9.jpg in \(root)/cat is not valid UTF-8, and npid reads only UTF-8 file names; rename it")
    }

    @Test func nonUTF8ClassFolderIsRejected() throws {
        let root = try makeFolder(["cat/1.jpg", "dog/1.jpg"])
        defer { TestImages.removeFolder(root) }
        let rawPath = Array((root + "/").utf8) + [0x65, 0x6D, 0xFF] + [0]
        let status = rawPath.withUnsafeBufferPointer { path in
            path.withMemoryRebound(to: CChar.self) { mkdir($0.baseAddress!, 0o700) }
        }
        #expect(status == 0)

        #expect(throws: DataError.invalidFileName(folder: root, name: "em\\xFF")) {
            try ImageFolder(split: root)
        }
    }

    @Test func nonUTF8OtherFileIsIgnored() throws {
        let root = try makeFolder(["cat/1.jpg", "dog/1.jpg"])
        defer { TestImages.removeFolder(root) }
        let rawPath = Array((root + "/cat/notes").utf8) + [0xE9] + Array(".txt".utf8) + [0]
        let descriptor = rawPath.withUnsafeBufferPointer { path in
            path.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_WRONLY | O_CREAT, 0o600) }
        }
        #expect(descriptor >= 0)
        close(descriptor)

        #expect(try ImageFolder(split: root).paths == [root + "/cat/1.jpg", root + "/dog/1.jpg"])
    }

    /// An entry named like an image that is not a readable regular file (a broken or looping link,
    /// a FIFO) is a bad file for the scan to report, not a file to leave out without a word.
    @Test func brokenLinksAndPipesAreBadFiles() throws {
        let root = try makeFolder(["cat/1.jpg", "dog/1.jpg"])
        defer { TestImages.removeFolder(root) }
        let png = TestImages.encodePNG(width: 2, height: 2, format: PNG_FORMAT_RGB, pixels: [UInt8](repeating: 9, count: 12))
        try TestImages.write(png, to: root + "/cat/1.jpg")
        try TestImages.write(png, to: root + "/dog/1.jpg")
        let manager = FileManager.default
        try manager.createSymbolicLink(atPath: root + "/cat/broken.jpg", withDestinationPath: root + "/absent.jpg")
        try manager.createSymbolicLink(atPath: root + "/cat/loop.jpg", withDestinationPath: root + "/cat/loop.jpg")
        #expect(mkfifo(root + "/dog/pipe.png", 0o600) == 0)
        try manager.createDirectory(atPath: root + "/dog/folder.jpg", withIntermediateDirectories: true)

        let folder = try ImageFolder(split: root)
        #expect(folder.paths == [root + "/cat/1.jpg", root + "/cat/broken.jpg", root + "/cat/loop.jpg",
                                 root + "/dog/1.jpg", root + "/dog/pipe.png"])

        let scan = ImageFolderScan(folder: folder, options: ImageScanOptions(threads: 1))
        #expect(scan.goodCount == 2)
        #expect(scan.badFiles == [
            BadImageFile(path: root + "/cat/broken.jpg",
                         error: .unreadableFile(path: root + "/cat/broken.jpg", reason: "No such file or directory")),
            BadImageFile(path: root + "/cat/loop.jpg",
                         error: .unreadableFile(path: root + "/cat/loop.jpg", reason: "Too many levels of symbolic links")),
            BadImageFile(path: root + "/dog/pipe.png",
                         error: .unreadableFile(path: root + "/dog/pipe.png", reason: "it is not a regular file")),
        ])
    }

    /// A class folder reached through a broken link (an unmounted disk, say) would otherwise drop
    /// out of both splits, and training would go on with one class fewer.
    @Test func brokenClassLinkIsRejected() throws {
        let root = try makeFolder(["cat/1.jpg", "dog/1.jpg"])
        defer { TestImages.removeFolder(root) }
        try FileManager.default.createSymbolicLink(atPath: root + "/emu", withDestinationPath: root + "/absent/emu")
        try FileManager.default.createSymbolicLink(atPath: root + "/.hidden", withDestinationPath: root + "/absent/hidden")

        let error = #expect(throws: DataError.self) {
            try ImageFolder(split: root)
        }
        #expect(error == .unreadableFile(path: root + "/emu", reason: "broken symbolic link (No such file or directory)"))
    }

    @Test func classLinkLoopIsRejected() throws {
        let root = try makeFolder(["cat/1.jpg", "dog/1.jpg"])
        defer { TestImages.removeFolder(root) }
        try FileManager.default.createSymbolicLink(atPath: root + "/loop", withDestinationPath: root + "/loop")

        #expect(throws: DataError.unreadableFile(path: root + "/loop", reason: "broken symbolic link (Too many levels of symbolic links)")) {
            try ImageFolder(split: root)
        }
    }

    // MARK: ImageStore

    @Test func storeDecodesFolderInDatasetOrder() throws {
        let root = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(root) }
        var expected: [RGBImage] = []
        for index in 0..<12 {
            let image = TestImages.noise(width: 4 + index, height: 3, seed: UInt64(index))
            let png = TestImages.encodePNG(width: image.width, height: image.height, format: PNG_FORMAT_RGB,
                                           pixels: image.pixels)
            try TestImages.write(png, to: root + "/class\(index % 3)/\(index).png")
            expected.append(image)
        }
        let folder = try ImageFolder(split: root)

        let store = try ImageStore(folder: folder, threads: 3)

        #expect(store.count == 12)
        #expect(store.labels == folder.labels)
        #expect(store.classNames == ["class0", "class1", "class2"])
        for index in 0..<store.count {
            let fileNumber = Int((folder.paths[index] as NSString).lastPathComponent.dropLast(4))!
            #expect(try store[index] == expected[fileNumber])
        }
    }

    @Test func storeNamesEveryBadFile() throws {
        let root = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(root) }
        let jpeg = TestImages.encodeJPEG(TestImages.gradient(width: 8, height: 8))
        for index in 0..<200 {
            try TestImages.write(jpeg, to: root + "/a/\(1000 + index).jpg")
        }
        try TestImages.write(Array(jpeg.prefix(jpeg.count / 2)), to: root + "/a/1150.jpg")
        try TestImages.write(Array("text".utf8), to: root + "/a/1170.jpg")

        let folder = try ImageFolder(split: root)
        let error = #expect(throws: DataError.self) {
            try ImageStore(folder: folder, threads: 2)
        }
        guard case .badImages(let files)? = error else {
            Issue.record("expected badImages, got \(String(describing: error))")
            return
        }
        #expect(files.map(\.path) == [root + "/a/1150.jpg", root + "/a/1170.jpg"])
        #expect(files[1].error == .unsupportedFormat(path: root + "/a/1170.jpg"))
        guard case .corruptImage(let path, _) = files[0].error else {
            Issue.record("expected corruptImage for the truncated file, got \(files[0].error)")
            return
        }
        #expect(path == root + "/a/1150.jpg")
    }
}
