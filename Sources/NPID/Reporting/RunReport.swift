import Foundation

/// The colours of the learning curves, shared with the tests that look for them on a
/// rendered page.
public enum ReportColors {
    public static let loss = "#1f77b4"
    public static let learningRate = "#ff7f0e"
    public static let knnTop1 = "#9467bd"
    public static let knnTop5 = "#8c564b"
}

/// A training run's HTML report: one self-contained file with inline SVG learning curves,
/// the kNN table with per-class accuracy and confusion matrix, retrieval pictures embedded
/// as base64 PNG, the epoch table and the configuration. It loads nothing from the network
/// and runs no script.
///
/// The markup is also well-formed XML, so tests can parse it.
public struct RunReport {
    public var title: String
    /// config.json flattened to dotted keys ("model.width"), sorted by key.
    public var configuration: [(key: String, value: String)]
    public var metrics: [EpochMetrics]
    public var evaluation: RunEvaluation?
    /// PNG bytes of the retrieval pictures, nil when absent.
    public var successPicture: [UInt8]?
    public var failurePicture: [UInt8]?
    public var generated: Date
    /// Inconsistencies between the run's files that `load` found, one sentence each, shown
    /// at the top of the page.
    public var warnings: [String] = []

    /// Confusion matrices of more classes than this are left to evaluation.json, because
    /// a page-wide table of them would be unreadable.
    public static let maximumConfusionClasses = 30

    public init(title: String, configuration: [(key: String, value: String)] = [], metrics: [EpochMetrics] = [],
                evaluation: RunEvaluation? = nil, successPicture: [UInt8]? = nil, failurePicture: [UInt8]? = nil,
                generated: Date = Date()) {
        self.title = title
        self.configuration = configuration
        self.metrics = metrics
        self.evaluation = evaluation
        self.successPicture = successPicture
        self.failurePicture = failurePicture
        self.generated = generated
    }

    /// Reads whichever of config.json, metrics.jsonl, evaluation.json and the retrieval
    /// pictures `runDirectory` contains. Throws `ReportInputError` for one of them that is a
    /// folder and `MetricsLogError` for a damaged metrics log.
    public static func load(runDirectory: String) throws -> RunReport {
        let folder = URL(fileURLWithPath: runDirectory)
        // Built from the folder as given, so that messages name the paths the user typed.
        let trimmed = runDirectory.count > 1 && runDirectory.hasSuffix("/") ? String(runDirectory.dropLast()) : runDirectory
        func path(_ name: String) -> String { trimmed + "/" + name }
        func exists(_ name: String) throws -> Bool {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path(name), isDirectory: &isFolder) else {
                return false
            }
            if isFolder.boolValue {
                throw ReportInputError(path: path(name), problem: "is a folder, not a file", advice: "remove or rename it")
            }
            return true
        }

        var report = RunReport(title: folder.standardizedFileURL.lastPathComponent)
        if try exists(RunFiles.configuration) {
            report.configuration = annotatedLoss(try flattenedConfiguration(contentsOf: path(RunFiles.configuration)))
        }
        let hasMetrics = try exists(RunFiles.metrics)
        if hasMetrics {
            report.metrics = try MetricsLog(path: path(RunFiles.metrics)).read(configuredEpochs: report.configuredEpochs)
        }
        if try exists(RunFiles.evaluation) {
            let evaluation = try RunEvaluation.read(contentsOf: path(RunFiles.evaluation))
            report.evaluation = evaluation
            let lastEpoch = report.metrics.last?.epoch ?? 0
            if evaluation.epoch > lastEpoch {
                var state = "ends at epoch \(lastEpoch)"
                if !hasMetrics {
                    state = "does not exist"
                } else if lastEpoch == 0 {
                    state = "records no epochs"
                }
                let consequence = lastEpoch == 0
                    ? "the report has no learning curves or epoch table"
                    : "the report's learning curves and epoch table stop at epoch \(lastEpoch)"
                report.warnings.append("\(path(RunFiles.metrics)) \(state), although \(path(RunFiles.evaluation)) is from epoch \(evaluation.epoch), so \(consequence)")
            }
        }
        if try exists(RunFiles.retrievalSuccesses) {
            report.successPicture = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(RunFiles.retrievalSuccesses))))
        }
        if try exists(RunFiles.retrievalFailures) {
            report.failurePicture = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(RunFiles.retrievalFailures))))
        }
        return report
    }

    /// The "epochs" entry of config.json, nil when absent or not an integer.
    var configuredEpochs: Int? {
        configuration.first { $0.key == "epochs" }.flatMap { Int($0.value) }
    }

    /// Returns `entries` with the loss marked unused when negativeCount is 0, because such a run
    /// trains the full softmax whatever config.json records as its loss.
    static func annotatedLoss(_ entries: [(key: String, value: String)]) -> [(key: String, value: String)] {
        guard entries.contains(where: { $0.key == "negativeCount" && $0.value == "0" }) else {
            return entries
        }
        return entries.map { entry in
            entry.key == "loss" ? (entry.key, entry.value + " (unused: negativeCount 0 trains the full softmax)") : entry
        }
    }

    /// Reads a JSON object and flattens nested objects into dotted keys.
    static func flattenedConfiguration(contentsOf path: String) throws -> [(key: String, value: String)] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ReportInputError(path: path, problem: "is not a JSON object")
        }
        var entries: [(key: String, value: String)] = []
        func visit(_ value: Any, key: String) {
            if let nested = value as? [String: Any] {
                for (name, inner) in nested {
                    visit(inner, key: key.isEmpty ? name : key + "." + name)
                }
            } else if let number = value as? NSNumber, String(cString: number.objCType) == "c" {
                // JSONSerialization returns true and false as NSNumber of type char.
                entries.append((key, number.boolValue ? "true" : "false"))
            } else if value is NSNull {
                entries.append((key, "none"))
            } else {
                entries.append((key, "\(value)"))
            }
        }
        visit(object, key: "")
        return entries.sorted { $0.key < $1.key }
    }

    // MARK: HTML

    /// Returns the whole page.
    public func html() -> String {
        var body: [String] = []
        body.append("<h1>\(HTMLText.escape(title))</h1>")
        body.append(#"<p class="subtitle">\#(HTMLText.escape(subtitle))</p>"#)
        for warning in warnings {
            body.append(#"<p class="warning">warning: \#(HTMLText.escape(warning))</p>"#)
        }
        body.append(summarySection())
        body.append(curvesSection())
        body.append(evaluationSection())
        body.append(retrievalSection())
        body.append(epochSection())
        body.append(configurationSection())
        return """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title>\(HTMLText.escape(title)) - npid report</title>
        <style>\(Self.style)</style>
        </head>
        <body>
        \(body.joined(separator: "\n"))
        </body>
        </html>

        """
    }

    /// Writes the page atomically to `path`.
    public func write(to path: String) throws {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
            throw ReportInputError(path: path, problem: "is a folder", advice: "remove or rename it")
        }
        try AtomicFile.write(Array(html().utf8), to: path)
    }

    private var subtitle: String {
        let planned = configuration.first { $0.key == "epochs" }?.value
        var parts = ["epoch \(metrics.last?.epoch ?? 0)" + (planned.map { " of \($0)" } ?? "")]
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        parts.append("generated \(formatter.string(from: generated))")
        return parts.joined(separator: " · ")
    }

    private func summarySection() -> String {
        var cards: [(String, String)] = []
        if let last = metrics.last {
            // The epoch's figures come from the memory bank. The kNN section below may show a
            // later evaluation against recomputed features, so the cards name their source.
            if let top1 = last.knnTop1 {
                cards.append(("kNN top-1, memory bank", String(format: "%.2f%%", top1)))
            }
            if let top5 = last.knnTop5 {
                cards.append(("kNN top-5, memory bank", String(format: "%.2f%%", top5)))
            }
            cards.append(("loss", String(format: "%.4f", last.loss)))
            cards.append(("images/s", String(format: "%.1f", last.imagesPerSecond)))
        }
        if let evaluation {
            cards.append(("classes", "\(evaluation.classNames.count)"))
            cards.append(("test images", "\(evaluation.queryCount)"))
        }
        guard !cards.isEmpty else {
            return #"<section id="summary"><p class="note">No epoch has finished yet.</p></section>"#
        }
        let items = cards.map { #"<div class="card"><div class="value">\#($0.1)</div><div class="label">\#(HTMLText.escape($0.0))</div></div>"# }
        return #"<section id="summary">\#(items.joined())</section>"#
    }

    /// Returns the three learning-curve charts: loss, learning rate and kNN accuracy per epoch.
    func charts() -> [LineChart] {
        let epochs = metrics.map { Double($0.epoch) }
        let loss = ChartSeries(name: "loss", color: ReportColors.loss, points: zip(epochs, metrics).map { (x: $0, y: $1.loss) })
        let rate = ChartSeries(name: "lr", color: ReportColors.learningRate, points: zip(epochs, metrics).map { (x: $0, y: $1.lr) })
        let top1 = ChartSeries(name: "top-1", color: ReportColors.knnTop1,
                               points: zip(epochs, metrics).compactMap { x, m in m.knnTop1.map { (x: x, y: $0) } })
        let top5 = ChartSeries(name: "top-5", color: ReportColors.knnTop5,
                               points: zip(epochs, metrics).compactMap { x, m in m.knnTop5.map { (x: x, y: $0) } })
        return [
            LineChart(title: "training loss (epoch mean)", xLabel: "epoch", series: [loss]),
            LineChart(title: "learning rate", xLabel: "epoch", series: [rate]),
            LineChart(title: "kNN accuracy on the test split (%)", xLabel: "epoch", series: [top1, top5]),
        ]
    }

    private func curvesSection() -> String {
        guard !metrics.isEmpty else {
            return #"<section id="curves"><h2>Learning curves</h2><p class="note">No epoch has finished yet.</p></section>"#
        }
        let svgs = charts().map { $0.svg() }
        return #"<section id="curves"><h2>Learning curves</h2><div class="charts">\#(svgs.joined(separator: "\n"))</div></section>"#
    }

    private func evaluationSection() -> String {
        guard let evaluation else {
            return #"<section id="knn"><h2>kNN evaluation</h2><p class="note">No evaluation yet. Run npid report RUN_DIR --data ROOT to compute one from the checkpoint.</p></section>"#
        }
        var html = [#"<section id="knn"><h2>kNN evaluation</h2>"#]
        html.append(#"<p>Weighted kNN after epoch \#(evaluation.epoch): each of the \#(evaluation.queryCount) test images is compared with the \#(HTMLText.escape(evaluation.features)) by cosine similarity, and its k = \#(evaluation.neighborCount) nearest training images vote for their class with weight exp(s / \#(LineChart.label(evaluation.temperature))).</p>"#)
        html.append(#"<table class="numbers"><tr><th>top-1</th><th>top-5</th><th>k</th><th>σ</th><th>features</th></tr>"#)
        html.append(String(format: "<tr><td>%.2f%%</td><td>%.2f%%</td>", evaluation.top1, evaluation.top5)
                    + "<td>\(evaluation.neighborCount)</td><td>\(LineChart.label(evaluation.temperature))</td><td>\(HTMLText.escape(evaluation.features))</td></tr></table>")
        if evaluation.classNames.count <= 5 {
            html.append(#"<p class="note">With \#(evaluation.classNames.count) classes, top-5 includes every class and is always 100%; compare runs by top-1.</p>"#)
        }
        html.append(perClassTable(evaluation))
        html.append(confusionTable(evaluation))
        html.append("</section>")
        return html.joined(separator: "\n")
    }

    private func perClassTable(_ evaluation: RunEvaluation) -> String {
        var rows = [#"<h3>Per class</h3><table class="per-class"><tr><th>class</th><th>test images</th><th>top-1</th><th></th></tr>"#]
        for (index, name) in evaluation.classNames.enumerated() {
            let total = evaluation.confusionMatrix.indices.contains(index) ? evaluation.confusionMatrix[index].reduce(0, +) : 0
            let accuracy = evaluation.perClassTop1.indices.contains(index) ? evaluation.perClassTop1[index] : nil
            let text = accuracy.map { String(format: "%.1f%%", $0) } ?? "n/a"
            let bar = accuracy.map { String(format: #"<div class="bar" style="width: %.1f%%"></div>"#, $0) } ?? ""
            rows.append(#"<tr><td>\#(HTMLText.escape(name))</td><td>\#(total)</td><td>\#(text)</td><td class="bar-cell">\#(bar)</td></tr>"#)
        }
        rows.append("</table>")
        return rows.joined(separator: "\n")
    }

    private func confusionTable(_ evaluation: RunEvaluation) -> String {
        let classCount = evaluation.classNames.count
        guard classCount <= Self.maximumConfusionClasses else {
            return #"<h3>Confusion matrix</h3><p class="note">\#(classCount) classes are too many to draw; \#(RunFiles.evaluation) contains the matrix.</p>"#
        }
        guard evaluation.confusionMatrix.count == classCount,
              evaluation.confusionMatrix.allSatisfy({ $0.count == classCount }) else {
            return #"<h3>Confusion matrix</h3><p class="note">The saved confusion matrix does not match the \#(classCount) classes.</p>"#
        }
        var rows = [#"<h3>Confusion matrix</h3><p>Rows: true class; columns: the kNN vote's top-1 class. Shading: share of the row.</p><table class="confusion"><tr><th>true \ predicted</th>"#]
        rows.append(evaluation.classNames.map { "<th>\(HTMLText.escape($0))</th>" }.joined())
        rows.append("</tr>")
        for (truth, counts) in evaluation.confusionMatrix.enumerated() {
            let total = max(counts.reduce(0, +), 1)
            var cells = ["<tr><th>\(HTMLText.escape(evaluation.classNames[truth]))</th>"]
            for count in counts {
                let share = Double(count) / Double(total)
                // White to dark blue (8, 81, 156) with the share of the row.
                let red = Int((255 - share * (255 - 8)).rounded())
                let green = Int((255 - share * (255 - 81)).rounded())
                let blue = Int((255 - share * (255 - 156)).rounded())
                let ink = share > 0.5 ? "#ffffff" : "#222222"
                cells.append(#"<td style="background: rgb(\#(red), \#(green), \#(blue)); color: \#(ink)">\#(count)</td>"#)
            }
            cells.append("</tr>")
            rows.append(cells.joined())
        }
        rows.append("</table>")
        return rows.joined(separator: "\n")
    }

    private func retrievalSection() -> String {
        var html = [#"<section id="retrieval"><h2>Retrieval</h2>"#]
        if let evaluation {
            html.append(String(format: "<p>Among %d test images taken evenly over the classes, %.1f%% of their %d nearest training images share their class. Each row: the query (blue frame), then its nearest training images, most similar first, framed green for the same class and red for another.</p>",
                               evaluation.retrievalQueryCount, evaluation.retrievalSameClassPercent, evaluation.retrievalNeighborCount))
        }
        for (heading, picture, missing) in [
            ("Successes: neighbours mostly of the query's class", successPicture, "No query has most of its neighbours in its own class yet."),
            ("Failures: neighbours mostly of other classes", failurePicture, "No query has most of its neighbours in other classes."),
        ] {
            html.append("<h3>\(HTMLText.escape(heading))</h3>")
            if let picture {
                html.append(#"<img class="grid" alt="\#(HTMLText.escape(heading))" src="data:image/png;base64,\#(Data(picture).base64EncodedString())"/>"#)
            } else {
                html.append(#"<p class="note">\#(HTMLText.escape(missing))</p>"#)
            }
        }
        html.append("</section>")
        return html.joined(separator: "\n")
    }

    private func epochSection() -> String {
        guard !metrics.isEmpty else { return "" }
        var rows = [#"<section id="epochs"><h2>Epochs</h2><table class="numbers"><tr><th>epoch</th><th>loss</th><th>lr</th><th>kNN top-1</th><th>kNN top-5</th><th>images/s</th><th>seconds</th></tr>"#]
        for record in metrics {
            let top1 = record.knnTop1.map { String(format: "%.2f%%", $0) } ?? "n/a"
            let top5 = record.knnTop5.map { String(format: "%.2f%%", $0) } ?? "n/a"
            rows.append("<tr><td>\(record.epoch)</td>" + String(format: "<td>%.4f</td>", record.loss)
                        + "<td>\(LineChart.label(record.lr))</td><td>\(top1)</td><td>\(top5)</td>"
                        + String(format: "<td>%.1f</td><td>%.1f</td></tr>", record.imagesPerSecond, record.seconds))
        }
        rows.append("</table></section>")
        return rows.joined(separator: "\n")
    }

    private func configurationSection() -> String {
        guard !configuration.isEmpty else { return "" }
        var rows = [#"<section id="configuration"><h2>Configuration</h2><table class="config">"#]
        for entry in configuration {
            rows.append("<tr><th>\(HTMLText.escape(entry.key))</th><td>\(HTMLText.escape(entry.value))</td></tr>")
        }
        rows.append("</table></section>")
        return rows.joined(separator: "\n")
    }

    static let style = """
    body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1560px; padding: 0 16px; color: #222222; background: #ffffff; }
    h1 { margin-bottom: 0; } h2 { margin-top: 32px; border-bottom: 1px solid #dddddd; }
    .subtitle, .note { color: #666666; }
    .warning { color: #a94400; }
    #summary { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 16px; }
    .card { border: 1px solid #dddddd; border-radius: 6px; padding: 8px 16px; min-width: 110px; }
    .card .value { font-size: 22px; font-weight: 600; } .card .label { color: #666666; font-size: 13px; }
    .charts { display: flex; flex-wrap: wrap; gap: 16px; }
    .chart { border: 1px solid #eeeeee; } .chart-title { font-size: 14px; font-weight: 600; }
    .tick, .legend, .axis-label { font-size: 11px; fill: #444444; }
    table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
    th, td { border: 1px solid #dddddd; padding: 3px 8px; text-align: right; }
    th { background: #f6f6f6; } .config th, .per-class td:first-child { text-align: left; }
    .bar-cell { width: 200px; } .bar { height: 10px; background: #6baed6; }
    .confusion td { min-width: 36px; text-align: center; }
    img.grid { display: block; max-width: 100%; image-rendering: pixelated; }
    """
}
