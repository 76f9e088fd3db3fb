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
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static func log(_ line: String) {
        guard !quiet else { return }
        clearProgress()
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    static func error(_ message: String) {
        clearProgress()
        FileHandle.standardError.write(Data(("npid: error: " + message + "\n").utf8))
    }

    private nonisolated(unsafe) static var progressShown = false
    private nonisolated(unsafe) static var lastDraw = Date.distantPast

    /// Redraws the progress line, at most ten times a second.
    static func progress(_ line: @autoclosure () -> String, force: Bool = false) {
        guard isTerminal && !quiet else { return }
        let now = Date()
        guard force || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        FileHandle.standardError.write(Data(("\r\u{1B}[2K" + line()).utf8))
        progressShown = true
    }

    static func clearProgress() {
        guard progressShown else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
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
