import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A dataset archive (.tar.gz) published at a URL with its MD5 checksum.
public struct DatasetArchive: Sendable, Equatable {
    public var url: String
    /// The published MD5 checksum, 32 hexadecimal digits.
    public var md5: String
    /// The archive's file name in the cache folder.
    public var fileName: String
    /// The folder the archive extracts to.
    public var folderName: String
    /// Files, relative to `folderName`, that a complete extraction contains.
    public var requiredFiles: [String]

    public init(url: String, md5: String, fileName: String, folderName: String, requiredFiles: [String]) {
        self.url = url
        self.md5 = md5.lowercased()
        self.fileName = fileName
        self.folderName = folderName
        self.requiredFiles = requiredFiles
    }
}

/// A report from `DatasetDownloader.fetch`, for a progress display.
public enum DownloadEvent: Sendable, Equatable {
    /// The transfer of `url` into the temporary file `partialPath` began.
    case started(url: String, partialPath: String)
    /// Bytes received so far; `totalBytes` is the server's Content-Length, when it sent one.
    case progress(receivedBytes: Int64, totalBytes: Int64?)
    /// The archive passed its checksum and is being extracted.
    case extracting(archivePath: String)
}

/// A download or extraction that failed; nothing it wrote stays in the cache folder.
public enum DownloadError: Error, CustomStringConvertible, Equatable {
    /// A program the download runs (curl or tar) is not on PATH.
    case programMissing(name: String, purpose: String)
    /// The transfer failed: unreachable host, HTTP error status, or a connection closed early.
    case transferFailed(url: String, message: String)
    /// The received file does not have the published checksum.
    case checksumMismatch(url: String, expected: String, actual: String)
    /// tar could not extract the archive.
    case extractionFailed(archivePath: String, message: String)
    /// The extracted archive or an existing folder lacks files of the dataset.
    case incompleteFolder(path: String, missing: [String])
    /// The cache folder cannot be created or written.
    case cacheNotWritable(path: String, reason: String)

    public var description: String {
        switch self {
        case .programMissing(let name, let purpose):
            return "\(name) is not installed or not on PATH, and --download needs it to \(purpose); "
                + "install \(name), or download the archive by hand and pass its folder with --data"
        case .transferFailed(let url, let message):
            return "download of \(url) failed (\(message)); nothing was cached, so check the network "
                + "connection and run again"
        case .checksumMismatch(let url, let expected, let actual):
            return "download of \(url) has MD5 \(actual), not the published \(expected); the file was "
                + "deleted, so run again, and if it persists download the archive by hand"
        case .extractionFailed(let archivePath, let message):
            return "cannot extract \(archivePath) (\(message)); check the free disk space and run again"
        case .incompleteFolder(let path, let missing):
            return "folder \(path) lacks \(missing.joined(separator: ", ")); delete the folder and run again "
                + "with --download"
        case .cacheNotWritable(let path, let reason):
            return "cannot write to the download folder \(path) (\(reason)); set XDG_CACHE_HOME or --data "
                + "to a writable folder"
        }
    }
}

/// Fetches dataset archives over HTTP(S), checks their MD5 and extracts them into a cache folder.
///
/// The transfer runs the `curl` program and the extraction the `tar` program, both found on PATH. A
/// program is used instead of Foundation's URLSession because on Linux URLSession needs libcurl at link
/// time, which would tie every `npid` binary to libcurl and its TLS libraries even when nothing is
/// downloaded.
///
/// Every file is written under a `.partial-` name and renamed into place only when complete: the
/// archive after its checksum matches, the extracted folder after every required file is present. On
/// failure the partial files are deleted, and ones left by a killed process are deleted by the next
/// fetch once they are 10 minutes old.
public enum DatasetDownloader {
    /// Prefix of files and folders that are still being written.
    static let partialPrefix = ".partial-"

    /// Returns `${XDG_CACHE_HOME:-~/.cache}/swift-npid`, where downloads go by default.
    public static func defaultCacheFolder(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let cacheHome = environment["XDG_CACHE_HOME"], !cacheHome.isEmpty {
            return cacheHome + "/swift-npid"
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.cache/swift-npid"
    }

    /// Returns the folder `folder/archive.folderName` with every required file, downloading and
    /// extracting the archive first when that folder does not exist yet.
    ///
    /// - Parameter events: called on the calling thread, about ten times a second during the transfer.
    /// - Throws: `DownloadError`; nothing partial is left in `folder` then.
    public static func fetch(_ archive: DatasetArchive, into folder: String,
                             events: (DownloadEvent) -> Void = { _ in }) throws -> String {
        let target = folder + "/" + archive.folderName
        if ImageFolder.isFolder(target) {
            let missing = missingFiles(archive, in: target)
            guard missing.isEmpty else {
                throw DownloadError.incompleteFolder(path: target, missing: missing)
            }
            return target
        }
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw DownloadError.cacheNotWritable(path: folder, reason: Self.reason(of: error))
        }
        removeStalePartials(in: folder)

        let archivePath = folder + "/" + archive.fileName
        if !(ImageFolder.isRegularFile(archivePath) && (try? MD5.hexDigest(ofFileAt: archivePath)) == archive.md5) {
            try download(archive, to: archivePath, events: events)
        }
        events(.extracting(archivePath: archivePath))
        try extract(archive, at: archivePath, into: folder)
        return target
    }

    static func missingFiles(_ archive: DatasetArchive, in folder: String) -> [String] {
        archive.requiredFiles.filter { !ImageFolder.isRegularFile(folder + "/" + $0) }
    }

    // MARK: Transfer

    /// Transfers the archive into a partial file, checks its MD5 and renames it to `archivePath`.
    static func download(_ archive: DatasetArchive, to archivePath: String,
                         events: (DownloadEvent) -> Void) throws {
        let curl = try findProgram("curl", purpose: "fetch \(archive.url)")
        let folder = (archivePath as NSString).deletingLastPathComponent
        let partialPath = folder + "/" + partialPrefix + archive.fileName + "-" + UUID().uuidString
        let headerPath = partialPath + ".headers"
        defer {
            unlink(headerPath)
            unlink(partialPath)
        }

        // -q ignores ~/.curlrc; --fail turns HTTP errors into a failure; the speed limit aborts a
        // transfer that stalls below 1 byte/s for a minute.
        let arguments = ["-q", "--fail", "--location", "--silent", "--show-error",
                         "--proto", "=http,https", "--proto-redir", "=http,https",
                         "--connect-timeout", "30", "--speed-limit", "1", "--speed-time", "60",
                         "--dump-header", headerPath, "--output", partialPath, archive.url]
        events(.started(url: archive.url, partialPath: partialPath))
        let result = try run(program: curl, arguments: arguments, purpose: "fetch \(archive.url)") {
            events(.progress(receivedBytes: fileSize(partialPath), totalBytes: contentLength(headerPath)))
        }
        guard result.status == 0 else {
            let message = result.errorOutput.isEmpty ? "curl exit status \(result.status)" : result.errorOutput
            throw DownloadError.transferFailed(url: archive.url, message: message)
        }
        events(.progress(receivedBytes: fileSize(partialPath), totalBytes: contentLength(headerPath)))

        let actual: String
        do {
            actual = try MD5.hexDigest(ofFileAt: partialPath)
        } catch {
            throw DownloadError.transferFailed(url: archive.url, message: "the received file cannot be read back")
        }
        guard actual == archive.md5 else {
            throw DownloadError.checksumMismatch(url: archive.url, expected: archive.md5, actual: actual)
        }
        guard rename(partialPath, archivePath) == 0 else {
            throw DownloadError.cacheNotWritable(path: folder, reason: String(cString: strerror(errno)))
        }
    }

    /// Returns the size of the file at `path`, or 0 when it does not exist yet.
    static func fileSize(_ path: String) -> Int64 {
        var status = stat()
        return stat(path, &status) == 0 ? Int64(status.st_size) : 0
    }

    /// Returns the Content-Length of the last response in curl's header dump (the one after redirects).
    static func contentLength(_ headerPath: String) -> Int64? {
        guard let text = try? String(contentsOfFile: headerPath, encoding: .isoLatin1) else { return nil }
        var length: Int64?
        for line in text.split(whereSeparator: \.isNewline) {
            if line.hasPrefix("HTTP/") {
                length = nil
            }
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "content-length" {
                length = Int64(parts[1].trimmingCharacters(in: .whitespaces))
            }
        }
        return length
    }

    // MARK: Extraction

    /// Extracts into a partial folder and renames the dataset folder into place once it is complete.
    static func extract(_ archive: DatasetArchive, at archivePath: String, into folder: String) throws {
        let tar = try findProgram("tar", purpose: "extract \(archive.fileName)")
        let staging = folder + "/" + partialPrefix + archive.folderName + "-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: staging) }
        do {
            try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: false)
        } catch {
            throw DownloadError.cacheNotWritable(path: folder, reason: Self.reason(of: error))
        }

        // GNU tar strips a leading "/" and refuses ".." in member names, so nothing lands outside staging.
        let result = try run(program: tar, arguments: ["-xzf", archivePath, "-C", staging, "--no-same-owner"],
                             purpose: "extract \(archive.fileName)") {}
        guard result.status == 0 else {
            let message = result.errorOutput.isEmpty ? "tar exit status \(result.status)" : result.errorOutput
            throw DownloadError.extractionFailed(archivePath: archivePath, message: message)
        }

        let extracted = staging + "/" + archive.folderName
        let missing = missingFiles(archive, in: extracted)
        guard missing.isEmpty else {
            // The archive matched its checksum yet lacks files, so extracting it again cannot help.
            unlink(archivePath)
            throw DownloadError.incompleteFolder(path: archivePath + " (extracted)", missing: missing)
        }
        let target = folder + "/" + archive.folderName
        if rename(extracted, target) != 0 {
            // Another process may have finished the same fetch first; its folder is as good as ours.
            guard ImageFolder.isFolder(target), missingFiles(archive, in: target).isEmpty else {
                throw DownloadError.cacheNotWritable(path: folder, reason: String(cString: strerror(errno)))
            }
        }
    }

    // MARK: Programs

    /// Returns the full path of `name` on PATH.
    static func findProgram(_ name: String, purpose: String) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for folder in path.split(separator: ":") where !folder.isEmpty {
            let candidate = folder + "/" + name
            if access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        throw DownloadError.programMissing(name: name, purpose: purpose)
    }

    /// Runs a program with stdin and stdout closed, calling `poll` every 0.1 s until it exits.
    /// Returns its exit status and standard error, trimmed; `purpose` completes the error when it cannot start.
    static func run(program: String, arguments: [String], purpose: String,
                    poll: () -> Void) throws -> (status: Int32, errorOutput: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        // Standard error goes to a file, so a chatty program never blocks on a full pipe.
        let errorPath = FileManager.default.temporaryDirectory.appendingPathComponent("npid-\(UUID().uuidString).stderr").path
        guard FileManager.default.createFile(atPath: errorPath, contents: nil),
              let errorHandle = FileHandle(forWritingAtPath: errorPath) else {
            throw DownloadError.cacheNotWritable(path: errorPath, reason: "the temporary file cannot be created")
        }
        defer {
            try? errorHandle.close()
            unlink(errorPath)
        }
        process.standardError = errorHandle
        do {
            try process.run()
        } catch {
            throw DownloadError.programMissing(name: program, purpose: purpose)
        }
        while process.isRunning {
            poll()
            usleep(100_000)
        }
        process.waitUntilExit()
        let errorText = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        return (process.terminationStatus, errorText.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    // MARK: Clean-up

    /// Deletes partial files and folders of earlier fetches that have not changed for 10 minutes. A running
    /// transfer that stalls for a minute is aborted by curl, so a file that old belongs to no live fetch.
    static func removeStalePartials(in folder: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        let cutoff = Date().addingTimeInterval(-600)
        for name in names where name.hasPrefix(partialPrefix) {
            let path = folder + "/" + name
            let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
            if let modified, modified < cutoff {
                try? FileManager.default.removeItem(atPath: path)
            }
        }
    }

    static func reason(of error: Error) -> String {
        (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
    }
}
