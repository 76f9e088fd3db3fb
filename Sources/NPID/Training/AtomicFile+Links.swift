#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

extension AtomicFile {
    /// Makes `path` a second name (a hard link) of the file `existing`, replacing whatever was
    /// at `path` in one rename, so readers see either the previous file or `existing`, whole.
    /// Costs no copy of the data. Throws `FileIOError`, whose `code` is `EPERM`, `EXDEV`,
    /// `EMLINK` or `ENOTSUP` on file systems that cannot hard-link the file.
    public static func replace(_ path: String, withLinkTo existing: String) throws {
        let slash = path.lastIndex(of: "/")
        let folderPrefix = slash.map { String(path[...$0]) } ?? ""
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path

        for _ in 0..<16 {
            let temporaryPath = temporaryName(for: name, folderPrefix: folderPrefix)
            if link(existing, temporaryPath) != 0 {
                let code = errno
                if code == EEXIST {
                    continue
                }
                throw FileIOError(operation: "link \(existing) as", path: temporaryPath, code: code)
            }
            if rename(temporaryPath, path) != 0 {
                let code = errno
                unlink(temporaryPath)
                throw FileIOError(operation: "rename \(temporaryPath) to", path: path, code: code)
            }
            // rename(2) does nothing when both names already link the same file, which leaves
            // the temporary name behind.
            unlink(temporaryPath)
            try synchronizeFolder(parentFolder(of: path))
            return
        }
        throw FileIOError(operation: "create a temporary link next to", path: path, code: EEXIST)
    }

    /// Deletes the temporary files that `write` and `replace` left in `folder` when their process
    /// ended mid-write, for example killed during a save. A file counts as abandoned when no
    /// process with the id in its name is running. Returns the names removed, sorted.
    @discardableResult
    public static func removeAbandonedTemporaryFiles(in folder: String) -> [String] {
        guard let stream = opendir(folder) else {
            return []
        }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            names.append(name)
        }
        closedir(stream)

        var removed: [String] = []
        for name in names.sorted() {
            guard let processID = writerProcessID(ofTemporaryName: name), processID != getpid() else {
                continue
            }
            // kill with signal 0 only checks whether the process exists.
            guard kill(processID, 0) != 0 && errno == ESRCH else {
                continue
            }
            if unlink(folder + "/" + name) == 0 {
                removed.append(name)
            }
        }
        return removed
    }

    /// Returns the process id in a temporary name `.NAME.tmp-PID-HEX`, or nil for other names.
    static func writerProcessID(ofTemporaryName name: String) -> pid_t? {
        guard name.hasPrefix("."), let marker = name.range(of: ".tmp-", options: .backwards) else {
            return nil
        }
        let parts = name[marker.upperBound...].split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let processID = pid_t(parts[0]), processID > 0,
              !parts[1].isEmpty, UInt32(parts[1], radix: 16) != nil else {
            return nil
        }
        return processID
    }
}
