import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import NPID

/// The HTML report and its SVG charts: well-formed markup, positions computed from the
/// layout, embedded pictures and no outside references.
@Suite struct RunReportTests {
    // MARK: charts

    @Test func ticksAreRoundNumbersAroundData() {
        #expect(LineChart.ticks(from: 0.3, to: 9.2) == [0, 2, 4, 6, 8, 10])
        #expect(LineChart.ticks(from: 1, to: 3, minimumStep: 1) == [1, 2, 3])
        #expect(LineChart.ticks(from: 41, to: 47.5) == [41, 42, 43, 44, 45, 46, 47, 48])
        // A single value is widened by 10% on each side first.
        let single = LineChart.ticks(from: 0.03, to: 0.03)
        #expect(single.first! <= 0.027)
        #expect(single.last! >= 0.033)
        #expect(single.count >= 2)
    }

    @Test func pointsMapIntoPlotArea() {
        let series = ChartSeries(name: "loss", color: "#1f77b4", points: [(x: 1, y: 8), (x: 3, y: 4), (x: 5, y: 2)])
        let chart = LineChart(title: "loss", xLabel: "epoch", series: [series])

        // x ticks 1...5 and y ticks 2...8 end exactly at the data, so the first point is at the
        // left edge and the top of the plot area, and the last at the right edge and bottom.
        #expect(chart.xTicks.first == 1)
        #expect(chart.xTicks.last == 5)
        #expect(chart.yTicks.first == 2)
        #expect(chart.yTicks.last == 8)
        #expect(chart.xPixel(1) == chart.marginLeft)
        #expect(chart.xPixel(5) == chart.width - chart.marginRight)
        #expect(chart.yPixel(8) == chart.marginTop)
        #expect(chart.yPixel(2) == chart.height - chart.marginBottom)
        #expect(chart.svg().contains(#"<polyline points="64,36 264,156 464,216""#))
    }

    @Test func svgIsWellFormed() throws {
        let series = ChartSeries(name: "a < b & c", color: "#9467bd", points: [(x: 1, y: 0.5)])
        let svg = LineChart(title: "top-1 \"%\"", xLabel: "epoch", series: [series]).svg()

        let elements = try XMLElementCounter.count(svg)

        #expect(elements["svg"] == 1)
        #expect(elements["circle"] == 1)
        #expect(elements["polyline"] == nil)
        #expect(svg.contains("a &lt; b &amp; c"))
    }

    // MARK: report

    static func sampleReport(picture: [UInt8]) -> RunReport {
        let metrics = (1...4).map { epoch in
            EpochMetrics(epoch: epoch, loss: 9 - Double(epoch), lr: 0.03, imagesPerSecond: 800 + Double(epoch),
                         knnTop1: 20 + Double(epoch), knnTop5: 60 + Double(epoch), seconds: 2)
        }
        let evaluation = RunEvaluation(
            epoch: 4, features: "memory bank", neighborCount: 5, temperature: 0.07, classNames: ["cat", "dog <&>"],
            top1: 75, top5: 100, perClassTop1: [50, 100], confusionMatrix: [[1, 1], [0, 2]], queryCount: 4,
            retrievalQueryCount: 4, retrievalNeighborCount: 3, retrievalSameClassPercent: 66.7)
        return RunReport(title: "c10", configuration: [("epochs", "10"), ("model.width", "8")], metrics: metrics,
                         evaluation: evaluation, successPicture: picture, failurePicture: nil,
                         generated: Date(timeIntervalSince1970: 0))
    }

    @Test func reportIsSelfContainedXML() throws {
        let picture = try PNGEncoder.encode(RGBImage(width: 3, height: 2, pixels: [UInt8](repeating: 77, count: 18)))
        let html = Self.sampleReport(picture: picture).html()

        let elements = try XMLElementCounter.count(html)

        #expect(elements["svg"] == 3)
        #expect(elements["img"] == 1)
        #expect(elements["script"] == nil)
        #expect(elements["link"] == nil)
        #expect(!html.contains("http:"))
        #expect(!html.contains("https:"))
        #expect(!html.contains("url("))
        #expect(html.contains(#"src="data:image/png;base64,\#(Data(picture).base64EncodedString())""#))
        #expect(html.contains("No query has most of its neighbours in other classes."))
    }

    @Test func reportShowsTablesAndConfiguration() {
        let html = Self.sampleReport(picture: [1]).html()

        #expect(html.contains("<h1>c10</h1>"))
        // The cards show the last epoch's memory-bank figures, which differ from the evaluation's 75%.
        #expect(html.contains(#"<div class="value">24.00%</div><div class="label">kNN top-1, memory bank</div>"#))
        #expect(html.contains(#"<div class="value">64.00%</div><div class="label">kNN top-5, memory bank</div>"#))
        #expect(html.contains("epoch 4 of 10 · generated 1970-01-01T00:00:00Z"))
        #expect(html.contains("<tr><td>75.00%</td><td>100.00%</td><td>5</td><td>0.07</td><td>memory bank</td></tr>"))
        #expect(html.contains("<tr><td>dog &lt;&amp;&gt;</td><td>2</td><td>100.0%</td>"))
        // The cat row: one of two correct, so both cells are half-shaded.
        #expect(html.contains(#"<tr><th>cat</th><td style="background: rgb(132, 168, 206); color: #222222">1</td><td style="background: rgb(132, 168, 206); color: #222222">1</td></tr>"#))
        #expect(html.contains("<tr><th>model.width</th><td>8</td></tr>"))
        #expect(html.contains("<tr><td>4</td><td>5.0000</td><td>0.03</td><td>24.00%</td><td>64.00%</td><td>804.0</td><td>2.0</td></tr>"))
        #expect(html.contains(#"<p class="note">With 2 classes, top-5 includes every class and is always 100%; compare runs by top-1.</p>"#))
    }

    /// With more than 5 classes top-5 is a result, so the page carries no such note.
    @Test func reportOfSixClassesHasNoTopFiveNote() {
        var report = Self.sampleReport(picture: [1])
        let names = ["a", "b", "c", "d", "e", "f"]
        report.evaluation = RunEvaluation(
            epoch: 4, features: "memory bank", neighborCount: 5, temperature: 0.07, classNames: names,
            top1: 50, top5: 90, perClassTop1: Array(repeating: 50, count: 6),
            confusionMatrix: (0..<6).map { row in (0..<6).map { $0 == row ? 1 : 0 } }, queryCount: 6,
            retrievalQueryCount: 6, retrievalNeighborCount: 3, retrievalSameClassPercent: 50)

        let html = report.html()

        #expect(html.contains("<tr><td>50.00%</td><td>90.00%</td>"))
        #expect(!html.contains("top-5 includes every class"))
    }

    @Test func reportWithoutRunDataSaysSo() throws {
        let html = RunReport(title: "empty").html()

        _ = try XMLElementCounter.count(html)
        #expect(html.contains("No epoch has finished yet."))
        #expect(html.contains("No evaluation yet. Run npid report RUN_DIR --data ROOT to compute one from the checkpoint."))
    }

    /// A run with negativeCount 0 trains the full softmax, so its recorded loss is marked unused.
    @Test func fullSoftmaxRunMarksLossUnused() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }

        for (negatives, expected) in [(0, "nce (unused: negativeCount 0 trains the full softmax)"), (4096, "nce")] {
            let configuration = #"{"epochs": 3, "loss": "nce", "negativeCount": \#(negatives)}"#
            try Data(configuration.utf8).write(to: folder.appendingPathComponent("config.json"))

            let report = try RunReport.load(runDirectory: folder.path)

            #expect(report.configuration.first { $0.key == "loss" }?.value == expected, "negativeCount \(negatives)")
        }
    }

    @Test func loadReadsRunFolder() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let configuration = #"{"epochs": 3, "model": {"width": 8, "stem": "cifar"}, "limitPerClass": null}"#
        try Data(configuration.utf8).write(to: folder.appendingPathComponent("config.json"))
        let log = MetricsLog(path: folder.appendingPathComponent("metrics.jsonl").path)
        try log.append(EpochMetrics(epoch: 1, loss: 2, lr: 0.1, imagesPerSecond: 10, seconds: 1))

        let report = try RunReport.load(runDirectory: folder.path)

        #expect(report.configuration.map(\.key) == ["epochs", "limitPerClass", "model.stem", "model.width"])
        #expect(report.configuration.map(\.value) == ["3", "none", "cifar", "8"])
        #expect(report.metrics.map(\.epoch) == [1])
        #expect(report.evaluation == nil)
        #expect(report.successPicture == nil)
    }

    @Test func loadRejectsEpochBeyondConfiguration() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        try Data(#"{"epochs": 2}"#.utf8).write(to: folder.appendingPathComponent("config.json"))
        let log = MetricsLog(path: folder.appendingPathComponent("metrics.jsonl").path)
        for epoch in 1...3 {
            try log.append(EpochMetrics(epoch: epoch, loss: 2, lr: 0.1, imagesPerSecond: 10, seconds: 1))
        }

        let error = #expect(throws: MetricsLogError.self) {
            try RunReport.load(runDirectory: folder.path)
        }
        #expect(error?.description == "metrics log \(log.path) line 3 records epoch 3, but the run is configured for 2 epochs; correct that line, or delete it and the lines after it")
    }

    @Test(arguments: ["config.json", "metrics.jsonl", "evaluation.json", "retrieval-successes.png"])
    func loadRejectsFolderInPlaceOfFile(name: String) throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let path = folder.appendingPathComponent(name).path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)

        let error = #expect(throws: ReportInputError.self) {
            try RunReport.load(runDirectory: folder.path)
        }
        #expect(error?.description == "\(path) is a folder, not a file; remove or rename it")
    }
}

/// Parses markup as XML and counts the elements by name, throwing on malformed input.
final class XMLElementCounter: NSObject, XMLParserDelegate {
    private var counts: [String: Int] = [:]
    private var failure: Error?

    static func count(_ markup: String) throws -> [String: Int] {
        let counter = XMLElementCounter()
        let parser = XMLParser(data: Data(markup.utf8))
        parser.delegate = counter
        guard parser.parse() else {
            throw counter.failure ?? parser.parserError ?? FormatsCheckError("XML parser failed")
        }
        return counter.counts
    }

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName: String?, attributes: [String: String] = [:]) {
        counts[elementName, default: 0] += 1
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) {
        failure = parseError
    }
}
