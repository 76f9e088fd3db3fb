import Foundation

/// One line of a `LineChart`: a name for the legend, a CSS colour and its points.
public struct ChartSeries: Sendable {
    public var name: String
    /// A CSS colour such as "#1f77b4".
    public var color: String
    public var points: [(x: Double, y: Double)]

    public init(name: String, color: String, points: [(x: Double, y: Double)]) {
        self.name = name
        self.color = color
        self.points = points.filter { $0.x.isFinite && $0.y.isFinite }
    }
}

/// A line chart drawn as inline SVG, for learning curves in the HTML report.
///
/// The plot area spans x from `marginLeft` to `width - marginRight` and y from
/// `marginTop` to `height - marginBottom`. Both axes run between their first and last tick,
/// which `ticks(from:to:)` places on round numbers around the data. Each point also gets a
/// dot, so that a one-epoch run still shows its value.
public struct LineChart: Sendable {
    public var title: String
    public var xLabel: String
    public var series: [ChartSeries]
    public var width = 480.0
    public var height = 260.0
    public var marginLeft = 64.0
    public var marginRight = 16.0
    public var marginTop = 36.0
    public var marginBottom = 44.0
    /// Whole-number x ticks only, as for epochs.
    public var integerX = true

    public init(title: String, xLabel: String, series: [ChartSeries]) {
        self.title = title
        self.xLabel = xLabel
        self.series = series
    }

    /// The x ticks; the first and last are the ends of the axis.
    public var xTicks: [Double] {
        let xs = series.flatMap { $0.points.map(\.x) }
        return Self.ticks(from: xs.min() ?? 0, to: xs.max() ?? 1, minimumStep: integerX ? 1 : 0)
    }

    /// The y ticks; the first and last are the ends of the axis.
    public var yTicks: [Double] {
        let ys = series.flatMap { $0.points.map(\.y) }
        return Self.ticks(from: ys.min() ?? 0, to: ys.max() ?? 1)
    }

    /// Maps a data x to its horizontal pixel position.
    public func xPixel(_ x: Double) -> Double {
        let ticks = xTicks
        return marginLeft + (x - ticks.first!) / (ticks.last! - ticks.first!) * (width - marginLeft - marginRight)
    }

    /// Maps a data y to its vertical pixel position (SVG's y grows downwards).
    public func yPixel(_ y: Double) -> Double {
        let ticks = yTicks
        return height - marginBottom - (y - ticks.first!) / (ticks.last! - ticks.first!) * (height - marginTop - marginBottom)
    }

    /// Returns about `count` + 1 evenly spaced round numbers (1, 2 or 5 times a power of ten
    /// apart, never less than `minimumStep`) whose first is at most `low` and whose last is at
    /// least `high`. An empty range is widened first, so there are always at least two ticks.
    public static func ticks(from low: Double, to high: Double, count: Int = 5, minimumStep: Double = 0) -> [Double] {
        var (low, high) = (low, high)
        if high <= low {
            let pad = max(abs(low) * 0.1, minimumStep > 0 ? minimumStep : 1e-12, 1e-12)
            (low, high) = (low - pad, high + pad)
        }
        let rough = (high - low) / Double(count)
        let magnitude = pow(10, floor(log10(rough)))
        let residual = rough / magnitude
        let factor: Double
        switch residual {
        case ..<1.5: factor = 1
        case ..<3: factor = 2
        case ..<7: factor = 5
        default: factor = 10
        }
        let step = max(factor * magnitude, minimumStep)
        let first = floor(low / step) * step
        let last = ceil(high / step) * step
        let intervals = Int(((last - first) / step).rounded())
        return (0...max(intervals, 1)).map { first + Double($0) * step }
    }

    /// Formats a tick value with up to four significant digits ("0.03", "1e-05", "250").
    public static func label(_ value: Double) -> String {
        let rounded = abs(value) < 1e-12 ? 0 : value
        return String(format: "%.4g", rounded)
    }

    /// Returns the chart as an `<svg>` element, without an XML declaration.
    public func svg() -> String {
        let plotRight = width - marginRight
        let plotBottom = height - marginBottom
        var parts: [String] = []
        parts.append(##"<svg class="chart" width="\##(Self.number(width))" height="\##(Self.number(height))" viewBox="0 0 \##(Self.number(width)) \##(Self.number(height))" role="img" aria-label="\##(HTMLText.escape(title))">"##)
        parts.append(##"<rect x="0" y="0" width="\##(Self.number(width))" height="\##(Self.number(height))" fill="#ffffff"/>"##)
        parts.append(##"<text x="\##(Self.number(marginLeft))" y="20" class="chart-title">\##(HTMLText.escape(title))</text>"##)

        // grid lines and tick labels
        for tick in yTicks {
            let y = Self.number(yPixel(tick))
            parts.append(##"<line x1="\##(Self.number(marginLeft))" y1="\##(y)" x2="\##(Self.number(plotRight))" y2="\##(y)" stroke="#e3e3e3" stroke-width="1"/>"##)
            parts.append(##"<text x="\##(Self.number(marginLeft - 6))" y="\##(y)" text-anchor="end" dominant-baseline="middle" class="tick">\##(Self.label(tick))</text>"##)
        }
        for tick in xTicks {
            let x = Self.number(xPixel(tick))
            parts.append(##"<line x1="\##(x)" y1="\##(Self.number(plotBottom))" x2="\##(x)" y2="\##(Self.number(plotBottom + 4))" stroke="#888888" stroke-width="1"/>"##)
            parts.append(##"<text x="\##(x)" y="\##(Self.number(plotBottom + 17))" text-anchor="middle" class="tick">\##(Self.label(tick))</text>"##)
        }
        parts.append(##"<line x1="\##(Self.number(marginLeft))" y1="\##(Self.number(plotBottom))" x2="\##(Self.number(plotRight))" y2="\##(Self.number(plotBottom))" stroke="#888888" stroke-width="1"/>"##)
        parts.append(##"<line x1="\##(Self.number(marginLeft))" y1="\##(Self.number(marginTop))" x2="\##(Self.number(marginLeft))" y2="\##(Self.number(plotBottom))" stroke="#888888" stroke-width="1"/>"##)
        parts.append(##"<text x="\##(Self.number((marginLeft + plotRight) / 2))" y="\##(Self.number(height - 6))" text-anchor="middle" class="axis-label">\##(HTMLText.escape(xLabel))</text>"##)

        // lines, dots and legend
        for (index, line) in series.enumerated() {
            let coordinates = line.points.map { "\(Self.number(xPixel($0.x))),\(Self.number(yPixel($0.y)))" }
            if coordinates.count > 1 {
                parts.append(##"<polyline points="\##(coordinates.joined(separator: " "))" fill="none" stroke="\##(line.color)" stroke-width="2.5" stroke-linejoin="round"/>"##)
            }
            for point in line.points {
                parts.append(##"<circle cx="\##(Self.number(xPixel(point.x)))" cy="\##(Self.number(yPixel(point.y)))" r="3.5" fill="\##(line.color)"/>"##)
            }
            let legendY = Self.number(14 + Double(index) * 14)
            let legendX = plotRight - 110
            parts.append(##"<line x1="\##(Self.number(legendX))" y1="\##(legendY)" x2="\##(Self.number(legendX + 18))" y2="\##(legendY)" stroke="\##(line.color)" stroke-width="3"/>"##)
            parts.append(##"<text x="\##(Self.number(legendX + 24))" y="\##(legendY)" dominant-baseline="middle" class="legend">\##(HTMLText.escape(line.name))</text>"##)
        }
        parts.append("</svg>")
        return parts.joined(separator: "\n")
    }

    /// Writes a coordinate with at most two decimals and no trailing zeros.
    static func number(_ value: Double) -> String {
        var text = String(format: "%.2f", value)
        while text.hasSuffix("0") {
            text.removeLast()
        }
        if text.hasSuffix(".") {
            text.removeLast()
        }
        return text == "-0" ? "0" : text
    }
}

/// Escaping for text placed in HTML or SVG content and attribute values.
public enum HTMLText {
    public static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }
}
