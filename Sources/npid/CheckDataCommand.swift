import Foundation
import NPID

/// `npid check-data`: decode every image of a folder once and report what training would find.
enum CheckDataCommand {
    static let specs: [OptionSpec] = [
        OptionSpec("--threads", value: "N", help: "decoding threads (default: one per core)"),
    ]

    static let help = helpText(
        usage: "npid check-data ROOT",
        summary: """
        Scans an image folder the way npid train does, without training: counts the images of
        each class in ROOT/train and ROOT/test (or in ROOT itself when it has neither), summarises
        their sizes and lists every file that fails to decode. Exits with 2, as npid train
        does, when ROOT has only one of train/ and test/, when the splits have different
        class folders, or when there is a single class; and with 1 when it finds bad files.
        """,
        specs: specs)

    /// One scanned split folder.
    struct SplitReport {
        let name: String
        let scan: ImageFolderScan
    }

    static func run(_ arguments: [String]) throws {
        let options = try ParsedOptions(arguments, specs: specs, command: "check-data", allowsPositional: true)
        guard options.positional.count == 1 else {
            throw UsageError(options.positional.isEmpty
                ? "npid check-data needs the folder to check; run npid check-data --help for an example"
                : "npid check-data takes one folder, got \(options.positional.count): \(options.positional.joined(separator: " "))")
        }
        let root = options.positional[0]
        let threads = try options.int("--threads") ?? ProcessInfo.processInfo.activeProcessorCount
        guard threads >= 1 else { throw UsageError("--threads must be at least 1, got \(threads)") }
        try requireThreadCountBelowLimit(threads, flag: "--threads")
        try TrainingData.checkRoot(root)

        let trimmed = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        let presentSplits = DataSplit.allCases.map(\.rawValue).filter { isFolder(trimmed + "/" + $0) }
        // Train/ and Test/ would otherwise be taken for class folders, while npid train rejects them.
        // Both must be there, because one alone may be a class, such as Train among Bus and Car.
        if presentSplits.isEmpty {
            let splitPaths = DataSplit.allCases.map { trimmed + "/" + $0.rawValue }
            let otherCases = splitPaths.compactMap(ImageFolder.folderDifferingInCase(from:))
            if otherCases.count == splitPaths.count {
                throw DataError.missingFolder(path: splitPaths[0], otherCase: otherCases[0])
            }
        }
        let splits = presentSplits.isEmpty ? [""] : presentSplits
        let scanOptions = ImageScanOptions(threads: threads, cacheBudget: ImageCacheBudget(bytes: 0))
        var reports: [SplitReport] = []
        for split in splits {
            let folder = try ImageFolder(split: split.isEmpty ? trimmed : trimmed + "/" + split)
            reports.append(SplitReport(name: split.isEmpty ? "images" : split,
                                       scan: ImageFolderScan(folder: folder, options: scanOptions)))
        }

        printSummary(reports)
        try checkLayout(root: trimmed, presentSplits: presentSplits, folders: reports.map(\.scan.folder))
        let badFiles = reports.flatMap(\.scan.badFiles)
        if !badFiles.isEmpty {
            // --on-bad-image skip cannot help when a class would have no image left, so that error
            // comes first, as npid train --on-bad-image skip raises it.
            for report in reports {
                _ = try report.scan.makeStore()
            }
            let single = badFiles.count == 1
            let noun = single ? "bad image file" : "bad image files"
            let pronoun = single ? "it" : "them"
            throw CheckDataFailure(message: "\(badFiles.count) \(noun) in \(trimmed); replace or delete \(pronoun), or train with --on-bad-image skip to leave \(pronoun) out")
        }
    }

    /// Throws the error that npid train --data `root` raises, with the same sentence, for a layout
    /// it cannot train on. npid train finds these before it decodes any image, so they come
    /// before bad files here too.
    static func checkLayout(root: String, presentSplits: [String], folders: [ImageFolder]) throws {
        if presentSplits.count == 1 {
            let missing = DataSplit.allCases.map(\.rawValue).first { !presentSplits.contains($0) }!
            throw DataError.missingFolder(path: root + "/" + missing,
                                          otherCase: ImageFolder.folderDifferingInCase(from: root + "/" + missing))
        }
        if folders.count == 2 {
            try TrainingData.checkClasses(train: folders[0], test: folders[1])
        } else {
            // A folder of class folders alone can still serve as --train-dir.
            try TrainingData.checkClassCount(folders[0])
        }
    }

    static func printSummary(_ reports: [SplitReport]) {
        for report in reports {
            let folder = report.scan.folder
            let bad = report.scan.badFiles.count
            Console.output("\(folder.directory): \(counted(report.scan.goodCount, "image")) in \(counted(folder.classNames.count, "class")), "
                           + (bad == 0 ? "no bad files" : counted(bad, "bad file")))
        }

        Console.output("")
        printClassTable(reports)

        Console.output("")
        let sizes = reports.flatMap { $0.scan.imageSizes.compactMap { $0 } }
        Console.output("image sizes: " + describeSizes(sizes))
        if let train = reports.first(where: { $0.name == "train" }) ?? reports.first {
            let trainSizes = train.scan.imageSizes.compactMap { $0 }
            let imageSize = TrainingConfiguration.defaultImageSize(for: trainSizes)
            Console.output("npid train would default to --image-size \(imageSize) with the \(Stem.defaultStem(forImageSize: imageSize).rawValue) stem")
        }

        let badFiles = reports.flatMap(\.scan.badFiles)
        if badFiles.isEmpty {
            Console.output("bad files: none")
        } else {
            Console.output("bad files (\(badFiles.count)):")
            for file in badFiles {
                Console.output("  \(file.path): \(file.error.reason)")
            }
        }

        // npid reads only the images directly in a class folder, so images sorted into deeper
        // folders would be missing from training without a word.
        printFirstTen(reports.flatMap(\.scan.folder.unreadFolders),
                      heading: { "folders inside class folders, not read (\($0)):" })

        // HEIC, WebP or GIF files would drop out of training unmentioned and could leave a class
        // smaller than the user expects.
        printFirstTen(reports.flatMap(\.scan.folder.otherFormatFiles),
                      heading: { "files of other image formats, not read (\($0)); save them as .jpg or .png files to use them:" })
    }

    /// Prints `heading` with the count of `paths`, then the first ten paths and how many more
    /// there are. Prints nothing for no paths.
    static func printFirstTen(_ paths: [String], heading: (Int) -> String) {
        guard !paths.isEmpty else {
            return
        }
        let listedCount = 10
        Console.output(heading(paths.count))
        for path in paths.prefix(listedCount) {
            Console.output("  \(path)")
        }
        if paths.count > listedCount {
            Console.output("  and \(paths.count - listedCount) more")
        }
    }

    /// Prints one row per class with its good images in each split, and a total row.
    static func printClassTable(_ reports: [SplitReport]) {
        var classNames: [String] = []
        for report in reports {
            for name in report.scan.folder.classNames where !classNames.contains(name) {
                classNames.append(name)
            }
        }
        let counts: [[String: Int]] = reports.map { report in
            var perClass: [String: Int] = [:]
            let folder = report.scan.folder
            for (index, label) in folder.labels.enumerated() where report.scan.imageSizes[index] != nil {
                perClass[folder.classNames[label], default: 0] += 1
            }
            for name in folder.classNames where perClass[name] == nil {
                perClass[name] = 0
            }
            return perClass
        }

        let nameWidth = max(5, classNames.map(\.count).max() ?? 0)
        let columnWidth = max(7, reports.map(\.name.count).max() ?? 0) + 2
        func row(_ label: String, _ cells: [String]) -> String {
            label.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                + cells.map { String(repeating: " ", count: max(1, columnWidth - $0.count)) + $0 }.joined()
        }
        Console.output(row("class", reports.map(\.name)))
        for name in classNames {
            Console.output(row(name, counts.map { $0[name].map(String.init) ?? "-" }))
        }
        Console.output(row("total", reports.map { String($0.scan.goodCount) }))
    }

    /// Describes the most common sizes and the range of the shorter side.
    static func describeSizes(_ sizes: [ImageSize]) -> String {
        guard !sizes.isEmpty else { return "none" }
        var counts: [ImageSize: Int] = [:]
        for size in sizes {
            counts[size, default: 0] += 1
        }
        let common = counts.sorted {
            $0.value != $1.value ? $0.value > $1.value
                : ($0.key.width, $0.key.height) < ($1.key.width, $1.key.height)
        }
        var parts = common.prefix(5).map { "\($0.key.width)x\($0.key.height) (\($0.value))" }
        if common.count > 5 {
            parts.append("and \(common.count - 5) other sizes")
        }
        let sides = sizes.map { min($0.width, $0.height) }.sorted()
        if sides.first == sides.last {
            return parts.joined(separator: ", ")
        }
        return parts.joined(separator: ", ")
            + "; shorter side \(sides.first!) to \(sides.last!) px, median \(sides[sides.count / 2]) px"
    }

    static func isFolder(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }
}

/// A check that found problems: the summary is printed already, and this is the one error line (exit 1).
struct CheckDataFailure: Error, CustomStringConvertible {
    let message: String

    var description: String { message }
}
