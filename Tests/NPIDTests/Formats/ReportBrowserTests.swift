import Foundation
import Testing
@testable import NPID

/// Renders a report in headless Chromium and looks at the pixels: the page must not be
/// blank, and the learning curves, the confusion matrix and the retrieval pictures must
/// show up in their colours, curves above pictures.
@Suite struct ReportBrowserTests {
    @Test(.enabled(if: Chromium.executable != nil,
                   "no Chromium found (chromium, chromium-browser or google-chrome in PATH, or NPID_CHROMIUM); .ci/run installs Debian's chromium"))
    func reportRendersInChromium() async throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let htmlPath = folder.appendingPathComponent("report.html").path
        let screenshotPath = folder.appendingPathComponent("report.png").path
        try Self.report().write(to: htmlPath)

        try await Chromium.screenshot(of: htmlPath, to: screenshotPath, width: 1400, height: 2400,
                                      profile: folder.appendingPathComponent("profile").path)
        let page = try ImageDecoder.decode(contentsOf: screenshotPath)

        #expect(page.width == 1400)
        #expect(page.height == 2400)
        let nonWhite = stride(from: 0, to: page.pixels.count, by: 3).filter { page.pixels[$0..<($0 + 3)].contains { $0 < 245 } }.count
        #expect(Double(nonWhite) / Double(page.width * page.height) > 0.02, "page is nearly blank: \(nonWhite) non-white pixels")

        let loss = Self.pixelRows(of: (31, 119, 180), in: page)
        let learningRate = Self.pixelRows(of: (255, 127, 14), in: page)
        let top1 = Self.pixelRows(of: (148, 103, 189), in: page)
        let confusion = Self.pixelRows(of: (8, 81, 156), in: page)
        let query = Self.pixelRows(of: (30, 90, 230), in: page)
        let match = Self.pixelRows(of: (20, 170, 60), in: page)
        let mismatch = Self.pixelRows(of: (220, 30, 30), in: page)
        for (name, rows) in [("loss curve", loss), ("lr curve", learningRate), ("kNN curve", top1),
                             ("confusion matrix", confusion), ("query frames", query), ("match frames", match),
                             ("mismatch frames", mismatch)] {
            #expect(rows.count >= 60, "\(name): \(rows.count) pixels of its colour")
        }
        let curvesEnd = max(loss.max() ?? 0, learningRate.max() ?? 0, top1.max() ?? 0)
        let picturesStart = min(query.min() ?? 0, match.min() ?? 0, mismatch.min() ?? 0)
        #expect(curvesEnd < picturesStart, "curves end at y \(curvesEnd), pictures start at y \(picturesStart)")
    }

    /// Returns the y of every pixel within 6 levels per channel of `color`.
    static func pixelRows(of color: (Int, Int, Int), in image: RGBImage) -> [Int] {
        var found: [Int] = []
        for y in 0..<image.height {
            for x in 0..<image.width {
                let index = (y * image.width + x) * 3
                if abs(Int(image.pixels[index]) - color.0) <= 6 && abs(Int(image.pixels[index + 1]) - color.1) <= 6
                    && abs(Int(image.pixels[index + 2]) - color.2) <= 6 {
                    found.append(y)
                }
            }
        }
        return found
    }

    /// Builds a report with six epochs, a two-class evaluation and both retrieval pictures.
    static func report() throws -> RunReport {
        let metrics = (1...6).map { epoch in
            EpochMetrics(epoch: epoch, loss: 8 - Double(epoch) * 0.7, lr: 0.03 * (epoch > 4 ? 0.1 : 1),
                         imagesPerSecond: 900, knnTop1: 20 + 5 * Double(epoch), knnTop5: 60 + 4 * Double(epoch), seconds: 3)
        }
        let evaluation = RunEvaluation(
            epoch: 6, features: "memory bank", neighborCount: 4, temperature: 0.07, classNames: ["cat", "dog"],
            top1: 75, top5: 100, perClassTop1: [50, 100], confusionMatrix: [[5, 5], [0, 10]], queryCount: 20,
            retrievalQueryCount: 20, retrievalNeighborCount: 4, retrievalSameClassPercent: 60)
        let grey = RGBImage(width: 32, height: 32, pixels: [UInt8](repeating: 128, count: 32 * 32 * 3))
        let bank = ImageStore(images: [grey, grey], labels: [0, 1], classNames: ["cat", "dog"])
        let row = RetrievalRow(query: 0, queryLabel: 0, neighbors: [(0, 0.9), (1, 0.8), (0, 0.7)], neighborLabels: [0, 1, 0])
        let picture = try PNGEncoder.encode(RetrievalExamples.picture([row, row], queryImage: { _ in grey }, bank: bank))
        return RunReport(title: "browser check", configuration: [("epochs", "6")], metrics: metrics, evaluation: evaluation,
                         successPicture: picture, failurePicture: picture)
    }
}

/// Finds and runs a headless Chromium.
enum Chromium {
    static let executable: String? = {
        if let path = ProcessInfo.processInfo.environment["NPID_CHROMIUM"], !path.isEmpty {
            return FileManager.default.isExecutableFile(atPath: path) ? path : nil
        }
        let folders = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
            for folder in folders where FileManager.default.isExecutableFile(atPath: "\(folder)/\(name)") {
                return "\(folder)/\(name)"
            }
        }
        return nil
    }()

    /// Renders the local file `htmlPath` to a PNG of `width` × `height` pixels.
    ///
    /// Background services are switched off and every host name resolves to nothing, so the
    /// browser makes no network request. A page that needed one would render without it.
    static func screenshot(of htmlPath: String, to pngPath: String, width: Int, height: Int, profile: String) async throws {
        guard let executable else { throw FormatsCheckError("no Chromium executable") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [
            "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--user-data-dir=\(profile)",
            "--window-size=\(width),\(height)", "--screenshot=\(pngPath)",
            URL(fileURLWithPath: htmlPath).absoluteString,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            process.terminationHandler = { _ in continuation.resume() }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
                return
            }
            let pid = process.processIdentifier
            CLI.timeLimitQueue.asyncAfter(deadline: .now() + 60) {
                if process.isRunning {
                    kill(pid, SIGKILL)
                }
            }
        }
        guard process.terminationStatus == 0, FileManager.default.fileExists(atPath: pngPath) else {
            throw FormatsCheckError("\(executable) exited with status \(process.terminationStatus) and wrote no screenshot")
        }
    }
}
