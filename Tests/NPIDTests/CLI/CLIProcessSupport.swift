import Foundation
import Testing
@testable import NPID

/// A running `npid` process that a test can watch and send signals to, with its output in files.
final class CLIProcess: @unchecked Sendable {
    private let process = Process()
    private let captureFolder: CLIScratchFolder
    private let stdoutHandle: FileHandle
    private let stderrHandle: FileHandle

    /// Starts `npid arguments` in `directory`, through `launcher` when given: a command such as
    /// `prlimit --fsize=N --` that ends by executing the npid path appended to it.
    init(_ arguments: [String], in directory: String, launcher: [String] = []) throws {
        guard let executable = CLI.executablePath else {
            throw CLIHarnessError(description: "no npid executable next to the test bundle or in .build/debug; build it with swift build --build-tests")
        }
        captureFolder = try CLIScratchFolder(prefix: "npid-cli-process")
        _ = FileManager.default.createFile(atPath: captureFolder.path + "/stdout", contents: nil)
        _ = FileManager.default.createFile(atPath: captureFolder.path + "/stderr", contents: nil)
        stdoutHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: captureFolder.path + "/stdout"))
        stderrHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: captureFolder.path + "/stderr"))

        let command = launcher + [executable] + arguments
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = stdoutHandle
        process.standardError = stderrHandle
        try process.run()
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        captureFolder.remove()
    }

    var stdout: String {
        (try? String(contentsOfFile: captureFolder.path + "/stdout", encoding: .utf8)) ?? ""
    }

    var stderr: String {
        (try? String(contentsOfFile: captureFolder.path + "/stderr", encoding: .utf8)) ?? ""
    }

    /// Polls stdout every 2 ms until it contains `text`; returns false if the process exits or
    /// `timeLimit` seconds pass first.
    func waitForStdout(containing text: String, timeLimit: Double = CLI.timeLimit) async throws -> Bool {
        try await waitFor(text, in: { self.stdout }, timeLimit: timeLimit)
    }

    /// Polls stderr as `waitForStdout` polls stdout.
    func waitForStderr(containing text: String, timeLimit: Double = CLI.timeLimit) async throws -> Bool {
        try await waitFor(text, in: { self.stderr }, timeLimit: timeLimit)
    }

    /// Polls with a blocking sleep rather than `Task.sleep`: a suspended task may wait seconds
    /// for a thread while other tests keep the cooperative pool busy, and the test would then
    /// react long after the output appeared.
    private func waitFor(_ text: String, in output: () -> String, timeLimit: Double) async throws -> Bool {
        let deadline = Date().addingTimeInterval(timeLimit)
        while Date() < deadline {
            if output().contains(text) {
                return true
            }
            if !process.isRunning {
                return output().contains(text)
            }
            usleep(2000)
        }
        return false
    }

    /// Sends SIGSTOP and waits until the kernel reports the process stopped, so that files
    /// read next cannot change until `send(SIGCONT)`. Returns false if it exited first.
    func pause() -> Bool {
        send(SIGSTOP)
        let statusPath = "/proc/\(process.processIdentifier)/status"
        let deadline = Date().addingTimeInterval(CLI.timeLimit)
        while process.isRunning && Date() < deadline {
            let status = (try? String(contentsOfFile: statusPath, encoding: .utf8)) ?? ""
            if status.contains("State:\tT") {
                return true
            }
            usleep(1000)
        }
        return false
    }

    func send(_ signal: Int32) {
        if process.isRunning {
            kill(process.processIdentifier, signal)
        }
    }

    /// Waits for the process to exit, killing it after `timeLimit` seconds, and returns its
    /// status (128 + the signal number when a signal ended it) and output.
    func finish(timeLimit: Double = CLI.timeLimit) async throws -> CLIResult {
        let deadline = Date().addingTimeInterval(timeLimit)
        var timedOut = false
        while process.isRunning {
            if Date() >= deadline {
                timedOut = true
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                break
            }
            usleep(5000)
        }
        try stdoutHandle.close()
        try stderrHandle.close()
        var status = process.terminationStatus
        if process.terminationReason == .uncaughtSignal {
            status += 128
        }
        return CLIResult(status: status, stdout: stdout, stderr: stderr, timedOut: timedOut)
    }
}

/// Run folders and checkpoints as the interrupt and save-failure tests inspect them.
enum CLIRunFolder {
    /// Returns the names in `folder`, sorted.
    static func names(_ folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
    }

    /// Temporary files that an unfinished save left in `folder`.
    static func temporaryNames(_ folder: String) throws -> [String] {
        try names(folder).filter { $0.hasPrefix(".") && $0.contains(".tmp-") }
    }

    /// Checks that two metrics logs agree on everything but timing: epoch, loss, learning rate
    /// and kNN accuracy, bit for bit.
    static func expectSameMetrics(_ path: String, as referencePath: String,
                                  sourceLocation: SourceLocation = #_sourceLocation) throws {
        let records = try MetricsLog(path: path).read()
        let reference = try MetricsLog(path: referencePath).read()
        #expect(records.map(\.epoch) == reference.map(\.epoch), sourceLocation: sourceLocation)
        for (record, expected) in zip(records, reference) {
            #expect(record.loss == expected.loss, "epoch \(record.epoch) loss", sourceLocation: sourceLocation)
            #expect(record.lr == expected.lr, "epoch \(record.epoch) lr", sourceLocation: sourceLocation)
            #expect(record.knnTop1 == expected.knnTop1, "epoch \(record.epoch) kNN top-1", sourceLocation: sourceLocation)
            #expect(record.knnTop5 == expected.knnTop5, "epoch \(record.epoch) kNN top-5", sourceLocation: sourceLocation)
        }
    }
}
