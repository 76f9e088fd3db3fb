import Foundation

/// Text of the training progress display. It only formats strings, and the caller decides
/// where and whether to print them.
public enum ProgressLine {
    /// Widest progress bar, in characters, so a wide terminal does not get a mostly empty line.
    public static let maximumBarWidth = 30
    /// Narrowest bar worth drawing. Where only a narrower one fits, the bar is left out.
    public static let minimumBarWidth = 5

    /// Formats the live progress line for a terminal, for example
    /// `epoch 3/200 [#######...................] 120/391 loss 8.123 74.2 img/s ETA 2m16s`.
    ///
    /// The result is at most `width` characters. The bar shrinks to fit, and on narrow
    /// terminals the bar, then the throughput, are left out before the line is cut. Pass one
    /// less than the terminal's column count if the terminal wraps when the last column is
    /// written. The ETA extrapolates the current epoch's rate, `elapsed / step` seconds per step,
    /// to the remaining `steps - step` steps.
    ///
    /// - Parameters:
    ///   - epoch: Current epoch, counted from 1.
    ///   - step: Steps finished in the current epoch, from 0 to `steps`.
    ///   - elapsed: Seconds since the current epoch started.
    public static func render(epoch: Int, epochs: Int, step: Int, steps: Int, loss: Double,
                              imagesPerSecond: Double, elapsed: Double, width: Int) -> String {
        let prefix = "epoch \(epoch)/\(epochs)"
        // Padding the step count to the width of the total keeps the line from jittering.
        let stepText = String(repeating: " ", count: max(0, String(steps).count - String(step).count)) + "\(step)/\(steps)"
        let lossText = "loss \(String(format: "%.3f", loss))"
        let rateText = "\(String(format: "%.1f", imagesPerSecond)) img/s"
        let etaText = "ETA \(formatDuration(estimatedRemaining(step: step, steps: steps, elapsed: elapsed)))"

        let suffix = [stepText, lossText, rateText, etaText].joined(separator: " ")
        let barWidth = min(maximumBarWidth, width - prefix.count - suffix.count - 4)
        if barWidth >= minimumBarWidth {
            return "\(prefix) [\(bar(step: step, steps: steps, width: barWidth))] \(suffix)"
        }

        let withoutBar = "\(prefix) \(suffix)"
        if withoutBar.count <= width {
            return withoutBar
        }
        let withoutRate = [prefix, stepText, lossText, etaText].joined(separator: " ")
        return String(withoutRate.prefix(max(0, width)))
    }

    /// Formats a duration as whole seconds ("45s"), minutes and seconds ("3m12s") or hours and
    /// minutes ("2h05m"), rounded to the second. Returns "--" for a negative, infinite, NaN or
    /// absurdly long (over 10⁹ s) duration, such as an ETA before the first step.
    public static func formatDuration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0, seconds < 1e9 else {
            return "--"
        }
        let total = Int(seconds.rounded())
        if total < 60 {
            return "\(total)s"
        }
        if total < 3600 {
            return "\(total / 60)m\(twoDigits(total % 60))s"
        }
        return "\(total / 3600)h\(twoDigits(total % 3600 / 60))m"
    }

    /// Formats the one plain line per epoch for logs and non-terminal output, for example
    /// `epoch 3/200 loss 8.1235 lr 0.03 74.2 img/s kNN top-1 45.12% top-5 80.00% time 5m12s`.
    /// The kNN accuracies are percentages; each is left out when nil, as is the epoch total.
    public static func epochSummary(epoch: Int, epochs: Int? = nil, loss: Double, lr: Double, imagesPerSecond: Double,
                                    knnTop1: Double? = nil, knnTop5: Double? = nil, seconds: Double) -> String {
        var parts = [
            epochs.map { "epoch \(epoch)/\($0)" } ?? "epoch \(epoch)",
            "loss \(String(format: "%.4f", loss))",
            "lr \(String(format: "%.4g", lr))",
            "\(String(format: "%.1f", imagesPerSecond)) img/s",
        ]
        var accuracies: [String] = []
        if let knnTop1 {
            accuracies.append("top-1 \(String(format: "%.2f", knnTop1))%")
        }
        if let knnTop5 {
            accuracies.append("top-5 \(String(format: "%.2f", knnTop5))%")
        }
        if !accuracies.isEmpty {
            parts.append("kNN " + accuracies.joined(separator: " "))
        }
        parts.append("time \(formatDuration(seconds))")
        return parts.joined(separator: " ")
    }

    /// Formats the summary line of a metrics log record.
    public static func epochSummary(_ metrics: EpochMetrics, epochs: Int? = nil) -> String {
        epochSummary(epoch: metrics.epoch, epochs: epochs, loss: metrics.loss, lr: metrics.lr,
                     imagesPerSecond: metrics.imagesPerSecond, knnTop1: metrics.knnTop1, knnTop5: metrics.knnTop5,
                     seconds: metrics.seconds)
    }

    /// Returns the seconds left in the epoch at the rate so far, or NaN before the first step.
    static func estimatedRemaining(step: Int, steps: Int, elapsed: Double) -> Double {
        guard step > 0, elapsed >= 0 else {
            return .nan
        }
        return elapsed / Double(step) * Double(max(0, steps - step))
    }

    private static func bar(step: Int, steps: Int, width: Int) -> String {
        let done = steps > 0 ? min(width, max(0, step) * width / steps) : 0
        return String(repeating: "#", count: done) + String(repeating: ".", count: width - done)
    }

    private static func twoDigits(_ value: Int) -> String {
        value < 10 ? "0\(value)" : "\(value)"
    }
}
