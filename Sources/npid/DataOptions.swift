import Foundation
import NPID

/// The options that choose and read a dataset, shared by every command that loads one.
enum DataOptions {
    static let specs: [OptionSpec] = [
        OptionSpec("--data", value: "ROOT", help: "image folder with train/CLASS/*.jpg|png and test/CLASS/...; with --dataset cifar10|cifar100, the folder of the extracted binary archive"),
        OptionSpec("--dataset", value: "NAME", help: "folder (image folders), cifar10 or cifar100 (official binary archives) (default folder)"),
        OptionSpec("--train-dir", value: "DIR", help: "training split, one sub-folder per class; with --test-dir, instead of --data"),
        OptionSpec("--test-dir", value: "DIR", help: "test split, one sub-folder per class; with --train-dir, instead of --data"),
        OptionSpec("--download", help: "fetch the official CIFAR archive into --data, or the cache $XDG_CACHE_HOME/swift-npid (default ~/.cache/swift-npid), unless it is there"),
        badImageSpec,
        OptionSpec("--cache-mb", value: "MB", help: "memory for decoded images; images beyond it are decoded again at every read (default: half the memory)"),
    ]

    static let badImageSpec = OptionSpec("--on-bad-image", value: "POLICY", help: "fail (stop and name every image file that does not decode) or skip (leave them out with a warning) (default fail)")

    /// Reads --on-bad-image, which is `fail` when not given.
    static func badImagePolicy(_ options: ParsedOptions) throws -> BadImagePolicy {
        let policyName = options.string("--on-bad-image") ?? BadImagePolicy.fail.rawValue
        guard let policy = BadImagePolicy(rawValue: policyName) else {
            throw UsageError("unknown --on-bad-image '\(policyName)'; choose fail or skip")
        }
        return policy
    }

    /// Logs one warning that lists the image files left out by --on-bad-image skip, if any.
    static func logSkipped(_ files: [BadImageFile]) {
        guard !files.isEmpty else {
            return
        }
        let noun = files.count == 1 ? "image file" : "image files"
        Console.log("warning: left out \(files.count) bad \(noun) (--on-bad-image skip): " + DataError.listBadFiles(files))
    }

    /// Warns of folders inside class folders, because a user who sorted images into them would
    /// otherwise see fewer images than expected without a reason.
    static func logUnread(_ folders: [String]) {
        guard let first = folders.first else {
            return
        }
        let subject = folders.count == 1 ? "folder \(first) inside a class folder is"
            : "\(folders.count) folders inside class folders, such as \(first), are"
        Console.log("note: \(subject) not read; npid reads only the images directly in each class folder")
    }

    /// The data a command asked for, checked before anything is read or downloaded.
    struct Request {
        var source: DataSource
        /// The archive to fetch into `downloadFolder` when --download is given and the data is not there.
        var download: (archive: DatasetArchive, folder: String)?
        var badImagePolicy: BadImagePolicy
        var cacheBytes: Int
    }

    /// Reads the data options of `command`, rejecting contradictory ones with a usage error.
    static func request(_ options: ParsedOptions, command: String,
                        environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Request {
        let datasetName = options.string("--dataset") ?? "folder"
        let policy = try badImagePolicy(options)
        var cacheBytes = DataLoadOptions.defaultCacheBytes
        if let megabytes = try options.int("--cache-mb") {
            guard megabytes >= 0 else { throw UsageError("--cache-mb must be 0 or more, got \(megabytes)") }
            cacheBytes = megabytes.multipliedReportingOverflow(by: 1_000_000).overflow ? Int.max : megabytes * 1_000_000
        }

        if datasetName == "folder" {
            if options.has("--download") {
                throw UsageError("--download fetches only --dataset cifar10 or cifar100; image folders are read from --data or --train-dir and --test-dir")
            }
            let source = try folderSource(options, command: command)
            return Request(source: source, download: nil, badImagePolicy: policy, cacheBytes: cacheBytes)
        }
        guard let dataset = CIFARDataset(rawValue: datasetName) else {
            throw UsageError("unknown --dataset '\(datasetName)'; choose folder, cifar10 or cifar100")
        }
        for flag in ["--train-dir", "--test-dir"] where options.has(flag) {
            throw UsageError("\(flag) applies to image folders, not --dataset \(datasetName); pass the folder of the binary archive with --data")
        }
        let directory = options.string("--data") ?? DatasetDownloader.defaultCacheFolder(environment: environment)
        var download: (archive: DatasetArchive, folder: String)?
        if options.has("--download") {
            download = (archive(for: dataset, environment: environment), directory)
        }
        return Request(source: .cifar(dataset, directory: directory), download: download, badImagePolicy: policy,
                       cacheBytes: cacheBytes)
    }

    /// Returns the image folders named by --data ROOT, or by --train-dir and --test-dir.
    private static func folderSource(_ options: ParsedOptions, command: String) throws -> DataSource {
        let trainDirectory = options.string("--train-dir")
        let testDirectory = options.string("--test-dir")
        if trainDirectory == nil && testDirectory == nil {
            let root = try options.requiredString("--data")
            try TrainingData.checkRoot(root)
            return .imageFolder(root: root)
        }
        if options.has("--data") {
            throw UsageError("pass either --data ROOT or --train-dir and --test-dir, not both")
        }
        guard let trainDirectory, let testDirectory else {
            let missing = trainDirectory == nil ? "--train-dir" : "--test-dir"
            let present = trainDirectory == nil ? "--test-dir" : "--train-dir"
            throw UsageError("\(present) needs \(missing) too; pass both split folders, or --data ROOT with train/ and test/ inside")
        }
        // Named here, because the scan's own message advises --data, which this user did not pass.
        for (flag, directory) in [("--train-dir", trainDirectory), ("--test-dir", testDirectory)]
            where !CheckDataCommand.isFolder(directory) {
            throw UsageError("\(flag) \(directory) does not exist or is not a folder; pass a folder with one sub-folder per class")
        }
        return .folders(train: trainDirectory, test: testDirectory)
    }

    /// Returns the official archive of `dataset`. NPID_CIFAR10_URL and NPID_CIFAR10_MD5 (NPID_CIFAR100_...
    /// for CIFAR-100) replace its URL and checksum, for a mirror or a local copy.
    static func archive(for dataset: CIFARDataset, environment: [String: String]) -> DatasetArchive {
        var archive = dataset.officialArchive
        let key = dataset == .cifar10 ? "NPID_CIFAR10" : "NPID_CIFAR100"
        if let url = environment[key + "_URL"], !url.isEmpty {
            archive.url = url
        }
        if let md5 = environment[key + "_MD5"], !md5.isEmpty {
            archive.md5 = md5.lowercased()
        }
        return archive
    }

    /// Downloads what the request needs, then scans and decodes both splits, logging downloads, skipped
    /// files, images that did not fit the cache and, with `logsDecodeTime`, the time the decoding took.
    static func load(_ request: Request, limitPerClass: Int?, testLimitPerClass: Int?,
                     logsDecodeTime: Bool = false) throws -> TrainingData {
        if let download = request.download, case .cifar(let dataset, let directory) = request.source,
           dataset.locate(in: directory) == nil {
            try fetch(download.archive, into: download.folder, dataset: dataset)
        }

        let started = Date()
        let options = DataLoadOptions(threads: ProcessInfo.processInfo.activeProcessorCount,
                                      badImagePolicy: request.badImagePolicy,
                                      cacheBudget: ImageCacheBudget(bytes: request.cacheBytes))
        let data = try TrainingData.load(request.source, limitPerClass: limitPerClass,
                                         testLimitPerClass: testLimitPerClass, options: options)
        if logsDecodeTime {
            Console.log(String(format: "decoded %d training and %d test images in %.1f s",
                               data.train.count, data.test.count, Date().timeIntervalSince(started)))
        }
        logSkipped(data.skippedFiles)
        logUnread(data.unreadFolders)
        let uncached = data.train.count + data.test.count - data.train.cachedCount - data.test.cachedCount
        if uncached > 0 {
            Console.log(String(format: "%d of %d decoded images (%.0f MB) fit the --cache-mb budget of %.0f MB; the other %d are decoded again at every read",
                               data.train.cachedCount + data.test.cachedCount, data.train.count + data.test.count,
                               Double(data.train.cachedBytes + data.test.cachedBytes) / 1e6,
                               Double(request.cacheBytes) / 1e6, uncached))
        }
        return data
    }

    /// Downloads and extracts `archive`, drawing a progress bar on a terminal.
    private static func fetch(_ archive: DatasetArchive, into folder: String, dataset: CIFARDataset) throws {
        var started = Date()
        let target = try DatasetDownloader.fetch(archive, into: folder) { event in
            switch event {
            case .started(let url, _):
                started = Date()
                Console.log("downloading \(dataset.displayName) from \(url) into \(folder)")
            case .progress(let received, let total):
                Console.progress(DownloadProgressLine.render(name: archive.fileName, receivedBytes: received,
                                                             totalBytes: total,
                                                             elapsed: Date().timeIntervalSince(started),
                                                             width: Console.columns - 1))
            case .extracting(let archivePath):
                Console.log("extracting \(archivePath) (MD5 \(archive.md5) verified)")
            }
        }
        Console.log("\(dataset.displayName) binary files ready in \(target)")
    }
}
