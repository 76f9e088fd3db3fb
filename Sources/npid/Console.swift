import Foundation

/// The command line's output streams: results go to standard output, progress and errors
/// to standard error. The progress bar redraws one line only when standard error is a terminal.
enum Console {
    static let isTerminal = isatty(STDERR_FILENO) != 0

    /// True on the ranks other than 0 of a data-parallel run: they report only errors, because
    /// rank 0 reports for the run.
    nonisolated(unsafe) static var quiet = false

    static func output(_ line: String) {
        guard !quiet else { return }
        write(line + "\n", to: .standardOutput)
    }

    static func log(_ line: String) {
        guard !quiet else { return }
        clearProgress()
        write(line + "\n", to: .standardError)
    }

    /// Writes a log line even on a quiet rank, for an event that only this rank observed.
    static func logFromAnyRank(_ line: String) {
        clearProgress()
        write(line + "\n", to: .standardError)
    }

    static func error(_ message: String) {
        clearProgress()
        write("npid: error: " + message + "\n", to: .standardError)
    }

    /// Writes `text`, or drops it when the stream is gone. After a terminal hangs up, writes
    /// fail with EIO, and FileHandle's non-throwing `write(_:)` would end the process before
    /// the run saved its checkpoint.
    private static func write(_ text: String, to handle: FileHandle) {
        try? handle.write(contentsOf: Data(text.utf8))
    }

    private nonisolated(unsafe) static var progressShown = false
    private nonisolated(unsafe) static var lastDraw = Date.distantPast

    /// Redraws the progress line, at most ten times a second.
    static func progress(_ line: @autoclosure () -> String, force: Bool = false) {
        guard isTerminal && !quiet else { return }
        let now = Date()
        guard force || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        write("\r\u{1B}[2K" + line(), to: .standardError)
        progressShown = true
    }

    static func clearProgress() {
        guard progressShown else { return }
        write("\r\u{1B}[2K", to: .standardError)
        progressShown = false
    }

    static var columns: Int {
        var size = winsize()
        if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 {
            return Int(size.ws_col)
        }
        return 100
    }
}
