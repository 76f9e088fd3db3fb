import Foundation

/// Text of the download progress display; the caller decides where and whether to print it.
public enum DownloadProgressLine {
    /// Formats the live line for a terminal, for example
    /// `cifar-10-binary.tar.gz [######..................]  25% 42.5/170.1 MB 8.3 MB/s ETA 15s`.
    /// Without a total size (no Content-Length) the bar, percentage and ETA are left out. The result is
    /// at most `width` characters; the bar shrinks or is left out first.
    ///
    /// - Parameters:
    ///   - receivedBytes: bytes received so far.
    ///   - totalBytes: the expected size, when the server sent one.
    ///   - elapsed: seconds since the transfer started.
    public static func render(name: String, receivedBytes: Int64, totalBytes: Int64?, elapsed: Double,
                              width: Int) -> String {
        let rate = elapsed > 0 ? Double(receivedBytes) / elapsed : 0
        let rateText = "\(megabytes(Int64(rate))) MB/s"
        guard let totalBytes, totalBytes > 0 else {
            let line = "\(name) \(megabytes(receivedBytes)) MB \(rateText)"
            return String(line.prefix(max(0, width)))
        }

        let fraction = min(1, Double(max(0, receivedBytes)) / Double(totalBytes))
        let percent = String(format: "%3d%%", Int((fraction * 100).rounded(.down)))
        let remaining = rate > 0 ? Double(totalBytes - receivedBytes) / rate : .nan
        let suffix = [percent, "\(megabytes(receivedBytes))/\(megabytes(totalBytes)) MB", rateText,
                      "ETA \(ProgressLine.formatDuration(remaining))"].joined(separator: " ")
        let barWidth = min(ProgressLine.maximumBarWidth, width - name.count - suffix.count - 4)
        if barWidth >= ProgressLine.minimumBarWidth {
            let done = Int(fraction * Double(barWidth))
            let bar = String(repeating: "#", count: done) + String(repeating: ".", count: barWidth - done)
            return "\(name) [\(bar)] \(suffix)"
        }
        return String("\(name) \(suffix)".prefix(max(0, width)))
    }

    /// Formats bytes as megabytes (10^6 bytes) with one decimal.
    static func megabytes(_ bytes: Int64) -> String {
        String(format: "%.1f", Double(bytes) / 1_000_000)
    }
}
