#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// An exclusive lock on a run folder, held by the one training process that writes it.
///
/// Two runs writing one folder would interleave metrics lines and replace each other's
/// checkpoints. The lock is an advisory `flock` on the folder itself, so it adds no file,
/// and the kernel releases it when the process ends, however it ends.
public final class RunFolderLock {
    public let runDirectory: String
    /// Whether this lock created the folder, which was missing.
    public let createdFolder: Bool
    private let descriptor: Int32

    /// Creates the folder when missing and takes the lock, or throws `RunFolderBusy`
    /// when another process holds it.
    public init(runDirectory: String) throws {
        self.runDirectory = runDirectory
        createdFolder = !FileManager.default.fileExists(atPath: runDirectory)
        try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        let descriptor = open(runDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw FileIOError(operation: "open run folder", path: runDirectory, code: errno)
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(descriptor)
            if code == EWOULDBLOCK {
                throw RunFolderBusy(runDirectory: runDirectory)
            }
            throw FileIOError(operation: "lock run folder", path: runDirectory, code: code)
        }
        self.descriptor = descriptor
    }

    deinit {
        close(descriptor)
    }

    /// Removes the folder when this lock created it and nothing was written into it, so that
    /// a run that failed at its start leaves no empty folder behind.
    public func removeFolderIfUnused() {
        guard createdFolder, (try? FileManager.default.contentsOfDirectory(atPath: runDirectory))?.isEmpty == true else {
            return
        }
        rmdir(runDirectory)
    }
}

/// Another process holds the run folder's lock.
public struct RunFolderBusy: Error, CustomStringConvertible, Sendable {
    public let runDirectory: String

    public var description: String {
        "another npid train is writing to --run-dir \(runDirectory); wait for it to end, stop it, or choose another --run-dir"
    }
}
