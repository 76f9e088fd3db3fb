#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc)
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
private let systemWrite = Darwin.write
#endif

/// A failed POSIX file operation, with the path and the `errno` it returned.
public struct FileIOError: Error, CustomStringConvertible, Sendable {
    /// The failed step, as a verb phrase ("create temporary file", "rename … to …").
    public let operation: String
    public let path: String
    public let code: Int32

    public init(operation: String, path: String, code: Int32) {
        self.operation = operation
        self.path = path
        self.code = code
    }

    public var description: String {
        let reason = String(cString: strerror(code))
        var message = "failed to \(operation) \(path): \(reason)"
        if let hint = Self.hint(for: code) {
            message += " (\(hint))"
        }
        return message
    }

    private static func hint(for code: Int32) -> String? {
        switch code {
        case ENOENT: return "check that the folder exists"
        case ENOTDIR: return "a component of the path is a file, not a folder"
        case EACCES, EPERM: return "check the permissions of the file and its folder"
        case ENOSPC, EDQUOT: return "free some disk space and try again"
        case EROFS: return "the file system is mounted read-only"
        case EFBIG: return "the file would exceed the file size limit of the process (ulimit -f) or of the file system"
        default: return nil
        }
    }
}

/// File writes that readers never see half done.
///
/// `write` puts the bytes into a temporary file in the target's folder, flushes it with fsync,
/// renames it over the target and then flushes the folder, so after a crash or a failed
/// write the target contains either its previous contents or the complete new ones.
public enum AtomicFile {
    /// Replaces the file at `path` with `bytes`. On failure the previous file is untouched,
    /// the temporary file is removed and a `FileIOError` is thrown. The one exception is a
    /// failed fsync of the folder after the rename, which throws with the new file in place.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        try write(to: path) { writer in
            try writer.write(bytes)
        }
    }

    /// Replaces the file at `path` with what `body` writes, streaming it so large files need
    /// no second copy in memory. If `body` throws, the previous file is untouched and the
    /// temporary file is removed.
    public static func write(to path: String, _ body: (inout FileDescriptorWriter) throws -> Void) throws {
        let folder = parentFolder(of: path)
        let (descriptor, temporaryPath) = try createTemporaryFile(for: path)
        var writer = FileDescriptorWriter(descriptor: descriptor, path: temporaryPath)
        var renamed = false
        defer {
            if !renamed {
                unlink(temporaryPath)
            }
        }

        do {
            try body(&writer)
            try writer.synchronize()
        } catch {
            close(descriptor)
            throw error
        }
        if close(descriptor) != 0 {
            throw FileIOError(operation: "close", path: temporaryPath, code: errno)
        }

        if rename(temporaryPath, path) != 0 {
            throw FileIOError(operation: "rename \(temporaryPath) to", path: path, code: errno)
        }
        renamed = true

        try synchronizeFolder(folder)
    }

    /// Returns the folder that contains `path` ("." for a bare file name).
    static func parentFolder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else {
            return "."
        }
        if slash == path.startIndex {
            return "/"
        }
        return String(path[..<slash])
    }

    /// Creates a temporary file next to `path`, named `.NAME.tmp-PID-RANDOM` so that writers in
    /// other processes or threads never share one. Returns its descriptor and path.
    private static func createTemporaryFile(for path: String) throws -> (Int32, String) {
        let slash = path.lastIndex(of: "/")
        let folderPrefix = slash.map { String(path[...$0]) } ?? ""
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path

        // O_EXCL makes a name clash fail instead of sharing a file, so a clash only costs a retry.
        for _ in 0..<16 {
            let temporaryPath = temporaryName(for: name, folderPrefix: folderPrefix)
            let descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if descriptor >= 0 {
                return (descriptor, temporaryPath)
            }
            let code = errno
            if code != EEXIST {
                throw FileIOError(operation: "create temporary file", path: temporaryPath, code: code)
            }
        }
        throw FileIOError(operation: "create a temporary file next to", path: path, code: EEXIST)
    }

    /// Returns a fresh temporary name beside `name`; the process id lets
    /// `removeAbandonedTemporaryFiles` tell abandoned files from ones still being written.
    static func temporaryName(for name: String, folderPrefix: String) -> String {
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        return "\(folderPrefix).\(name).tmp-\(getpid())-\(suffix)"
    }

    /// Flushes the folder entry so the rename itself survives a power loss.
    static func synchronizeFolder(_ folder: String) throws {
        let descriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if descriptor < 0 {
            throw FileIOError(operation: "open folder", path: folder, code: errno)
        }
        defer { close(descriptor) }

        // Some file systems return EINVAL for fsync on a folder. The file data is already on
        // disk by then, so only the rename is less durable there.
        if fsync(descriptor) != 0 && errno != EINVAL {
            throw FileIOError(operation: "fsync folder", path: folder, code: errno)
        }
    }
}

/// Writes whole buffers to an open file descriptor, retrying short writes and EINTR.
public struct FileDescriptorWriter {
    let descriptor: Int32
    /// The file's path, used only in error messages.
    let path: String
    /// Bytes written so far.
    public private(set) var count = 0

    init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    public mutating func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { buffer in
            try write(buffer)
        }
    }

    public mutating func write(_ buffer: UnsafeRawBufferPointer) throws {
        guard var address = buffer.baseAddress else {
            return
        }
        var remaining = buffer.count
        while remaining > 0 {
            let written = systemWrite(descriptor, address, remaining)
            if written < 0 {
                if errno == EINTR {
                    continue
                }
                throw FileIOError(operation: "write", path: path, code: errno)
            }
            address += written
            remaining -= written
            count += written
        }
    }

    mutating func synchronize() throws {
        if fsync(descriptor) != 0 {
            throw FileIOError(operation: "fsync", path: path, code: errno)
        }
    }
}
