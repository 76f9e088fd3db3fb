import Foundation
import Testing
@testable import NPID

/// `npid neighbors` query selection, `npid search`, `npid embed`, `npid linear`, `npid eval
/// --knn-t` and `npid bench --knn` on the shared tiny run.
@Suite struct CLIRetrievalTests {
    static func testPaths(_ run: CLITrainedRun) throws -> [String] {
        try ImageFolder(split: run.dataset.root + "/test").paths
    }

    /// Splits a neighbors line `PATH [class]: c1 s1 c2 s2 ...` into its parts.
    static func parseNeighborsLine(_ line: String) -> (path: String, label: String, neighbors: [(label: String, similarity: Double)])? {
        guard let open = line.range(of: " ["), let close = line.range(of: "]: ") else { return nil }
        let fields = line[close.upperBound...].split(separator: " ").map(String.init)
        guard fields.count % 2 == 0 else { return nil }
        let neighbors = stride(from: 0, to: fields.count, by: 2).map { (label: fields[$0], similarity: Double(fields[$0 + 1]) ?? .nan) }
        return (String(line[..<open.lowerBound]), String(line[open.upperBound..<close.lowerBound]), neighbors)
    }

    // MARK: neighbors

    @Test func neighborsShowsListedQueries() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["neighbors", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                        "--out", scratch.path + "/nn.png", "--queries", "7,0,11", "--neighbors", "3",
                                        "--threads", "1"], in: scratch.path)

        result.expectSuccess()
        let paths = try Self.testPaths(run)
        let rows = result.stdoutLines.dropLast().map(Self.parseNeighborsLine)
        #expect(rows.map { $0?.path } == [paths[7], paths[0], paths[11]])
        #expect(rows.allSatisfy { $0?.neighbors.count == 3 })
    }

    @Test func neighborsRandomQueriesFollowSeed() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["neighbors", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                        "--out", scratch.path + "/nn.png", "--queries", "random:4", "--seed", "9",
                                        "--neighbors", "2", "--threads", "1"], in: scratch.path)

        result.expectSuccess()
        let paths = try Self.testPaths(run)
        let expected = RetrievalExamples.randomIndices(count: 4, below: paths.count, seed: 9).map { paths[$0] }
        #expect(result.stdoutLines.dropLast().map { Self.parseNeighborsLine($0)?.path } == expected)
    }

    @Test func neighborsFailuresAreMostlyOtherClasses() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let picture = scratch.path + "/failures.png"

        let result = try await CLI.run(["neighbors", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                        "--out", picture, "--failures", "--neighbors", "3", "--rows", "20",
                                        "--threads", "1"], in: scratch.path)

        result.expectSuccess()
        let lines = result.stdoutLines
        if lines == ["no query among \(run.dataset.testCount) test images has most of its 3 neighbours in other classes; no picture written"] {
            #expect(!FileManager.default.fileExists(atPath: picture))
            return
        }
        let rows = lines.dropLast().compactMap(Self.parseNeighborsLine)
        #expect(rows.count == lines.count - 1, "stdout: \(result.stdout)")
        let otherCounts = rows.map { row in row.neighbors.filter { $0.label != row.label }.count }
        #expect(otherCounts.allSatisfy { $0 >= 2 }, "other-class neighbours per row: \(otherCounts)")
        #expect(otherCounts == otherCounts.sorted(by: >))
        #expect(FileManager.default.fileExists(atPath: picture))
    }

    @Test(arguments: [
        ("12", "--queries index 12 is out of range; the test split has 12 images, indices 0 to 11"),
        ("random:0", "--queries random:0 is invalid; random:N needs a whole number N of at least 1, such as random:20"),
        ("3,x", "--queries 3,x is invalid: 'x' is not a test index; give comma-separated whole numbers from 0, such as 3,17,42, or random:N"),
    ])
    func neighborsRejectsBadQueries(queries: String, message: String) async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["neighbors", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                        "--out", scratch.path + "/nn.png", "--queries", queries, "--threads", "1"],
                                       in: scratch.path)

        result.expectRejected(status: 2, message: message)
    }

    // MARK: search and embed

    @Test func searchAgreesWithNeighbors() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let query = try Self.testPaths(run)[5]

        let search = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                        query, "--top", "4", "--threads", "1"], in: scratch.path)
        let neighbors = try await CLI.run(["neighbors", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                           "--out", scratch.path + "/nn.png", "--queries", "5", "--neighbors", "4",
                                           "--threads", "1"], in: scratch.path)

        search.expectSuccess()
        neighbors.expectSuccess()
        let lines = search.stdoutLines
        try #require(lines.count == 7, "stdout: \(search.stdout)")
        #expect(lines[0] == query)
        let expected = try #require(neighbors.stdoutLines.first.flatMap(Self.parseNeighborsLine))
        var classes: [String] = []
        for (rank, (line, neighbor)) in zip(lines[1...4], expected.neighbors).enumerated() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            try #require(fields.count == 4, "line: \(line)")
            #expect(fields[0] == String(rank + 1))
            #expect(abs((Double(fields[1]) ?? .nan) - neighbor.similarity) <= 0.0006, "line: \(line)")
            #expect(fields[2] == neighbor.label)
            #expect(fields[3].hasPrefix("\(run.dataset.root)/train/\(neighbor.label)/"), "line: \(line)")
            classes.append(fields[2])
        }
        let counts = Dictionary(classes.map { ($0, 1) }, uniquingKeysWith: +)
        let expectedSummary = counts.sorted { $0.value != $1.value ? $0.value > $1.value : run.dataset.classNames.firstIndex(of: $0.key)! < run.dataset.classNames.firstIndex(of: $1.key)! }
            .map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        #expect(lines[5] == "  classes: " + expectedSummary)
        let queryClass = URL(fileURLWithPath: query).deletingLastPathComponent().lastPathComponent
        #expect(lines[6] == "  same class as the query's folder (\(queryClass)): \(counts[queryClass] ?? 0) of 4")
    }

    @Test func searchSummarisesSameClassMatches() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let paths = try Self.testPaths(run)
        let outside = scratch.path + "/query.jpg"
        try FileManager.default.copyItem(atPath: paths[3], toPath: outside)

        let result = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                        paths[1], outside, paths[8], "--top", "3", "--threads", "1"], in: scratch.path)

        result.expectSuccess()
        let lines = result.stdoutLines
        // Five lines per query (path, three matches, classes), a same-class line for two of them, the summary.
        try #require(lines.count == 18, "stdout: \(result.stdout)")
        // Only the two queries inside class folders are judged, so the copy outside gets no such line.
        var sameCounts: [Int] = []
        for start in [0, 11] {
            let queryClass = URL(fileURLWithPath: lines[start]).deletingLastPathComponent().lastPathComponent
            let same = lines[(start + 1)...(start + 3)].filter {
                $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init)[2] == queryClass
            }.count
            #expect(lines[start + 5] == "  same class as the query's folder (\(queryClass)): \(same) of 3")
            sameCounts.append(same)
        }
        #expect(lines[6] == outside)
        #expect(lines[10].hasPrefix("  classes: "))
        let majority: Int = sameCounts.filter { $0 >= 2 }.count
        let mean: Double = Double(sameCounts[0] + sameCounts[1]) / 2
        let share: Double = 50 * Double(majority)
        let summary = String(format: "2 queries in class folders: %.2f of 3 matches share the class on average; %d (%.1f%%) have more than half",
                             mean, majority, share)
        #expect(lines[17] == summary)
    }

    @Test func searchDrawsPicture() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let paths = try Self.testPaths(run)
        let picture = scratch.path + "/search.png"

        let result = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                        paths[0], paths[9], "--top", "3", "--out", picture, "--threads", "1"],
                                       in: scratch.path)

        result.expectSuccess()
        #expect(result.stdoutLines.last == "picture: \(picture)")
        let image = try ImageDecoder.decode(contentsOf: picture)
        let size = ImageGrid(queryGap: 8).canvasSize(rowCount: 2, columnCount: 4)
        #expect(image.width == size.width)
        #expect(image.height == size.height)
    }

    @Test func searchPictureFramesClassMatches() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let paths = try Self.testPaths(run)
        let outside = scratch.path + "/query.jpg"
        try FileManager.default.copyItem(atPath: paths[3], toPath: outside)
        let picture = scratch.path + "/search.png"

        let result = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                        paths[1], outside, "--top", "3", "--out", picture, "--threads", "1"],
                                       in: scratch.path)

        result.expectSuccess()
        let lines = result.stdoutLines
        // The first query: path, three matches, classes, same-class line. The second: path, three matches, classes.
        try #require(lines.count == 12, "stdout: \(result.stdout)")
        let queryClass = URL(fileURLWithPath: paths[1]).deletingLastPathComponent().lastPathComponent
        let matchClasses = lines[1...3].map { $0.split(separator: " ").map(String.init)[2] }
        let image = try ImageDecoder.decode(contentsOf: picture)
        let grid = ImageGrid(queryGap: 8)
        func frameColor(row: Int, column: Int) -> [UInt8] {
            // The frame sits in the padding, so the pixel just above and left of a tile is on it.
            let origin = grid.tileOrigin(row: row, column: column)
            let offset = 3 * ((origin.y - 1) * image.width + origin.x - 1)
            return Array(image.pixels[offset..<(offset + 3)])
        }
        func components(_ border: GridBorder) -> [UInt8] {
            [border.rgb.red, border.rgb.green, border.rgb.blue]
        }
        for (column, matchClass) in zip(1...3, matchClasses) {
            let expected: GridBorder = matchClass == queryClass ? .match : .mismatch
            #expect(frameColor(row: 0, column: column) == components(expected), "match \(column) of class \(matchClass)")
        }
        // The copy outside any class folder has no class to compare with.
        for column in 1...3 {
            #expect(frameColor(row: 1, column: column) == [150, 150, 150], "match \(column) of the unlabelled query")
        }
        #expect(frameColor(row: 0, column: 0) == components(.query))
    }

    @Test func searchRejectsUndecodableQuery() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let query = scratch.path + "/notes.jpg"
        try "not a picture".write(toFile: query, atomically: true, encoding: .utf8)

        let result = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--data", run.dataset.root, query],
                                       in: scratch.path)

        result.expectRejected(status: 1, message: "query image \(query) cannot be read (not a JPEG or PNG image); pass JPEG or PNG files as queries")
    }

    /// A truncated JPEG is the right format, so the advice is to replace it, not to change format.
    @Test func searchRejectsTruncatedQuery() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let jpeg = TestImages.encodeJPEG(TestImages.noise(width: 32, height: 32, seed: 7))
        let query = try scratch.write(Array(jpeg.prefix(jpeg.count / 2)), to: "cut.jpg")

        let result = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--data", run.dataset.root, query],
                                       in: scratch.path)

        #expect(result.status == 1, "stderr: \(result.stderr)")
        #expect(result.errorLines.count == 1, "stderr: \(result.stderr)")
        #expect(result.errorLines.first?.hasPrefix("npid: error: query image \(query) cannot be read (libjpeg-turbo: ") == true, "stderr: \(result.stderr)")
        #expect(result.errorLines.first?.hasSuffix("); replace the file or pass another query") == true, "stderr: \(result.stderr)")
    }

    @Test func searchRejectsMissingQuery() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let missing = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                         scratch.path + "/absent.jpg"], in: scratch.path)
        let none = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--data", run.dataset.root],
                                     in: scratch.path)

        missing.expectRejected(status: 2, message: "query image \(scratch.path)/absent.jpg does not exist or is a folder; pass image files after the options")
        none.expectRejected(status: 2, message: "npid search needs at least one QUERY_IMAGE file after the options; run npid search --help for an example")
    }

    @Test func embedMatchesRecomputedSearch() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let query = try Self.testPaths(run)[2]

        let embedTrain = try await CLI.run(["embed", "--checkpoint", run.checkpointPath, "--images", run.dataset.root + "/train",
                                            "--out", scratch.path + "/train.safetensors", "--threads", "1"], in: scratch.path)
        let embedTest = try await CLI.run(["embed", "--checkpoint", run.checkpointPath, "--images", run.dataset.root + "/test",
                                           "--out", scratch.path + "/test.safetensors", "--threads", "1"], in: scratch.path)
        let search = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                        query, "--top", "3", "--recompute", "--threads", "1"], in: scratch.path)

        embedTrain.expectSuccess()
        embedTest.expectSuccess()
        search.expectSuccess()
        let train = try EmbeddingFile.read(contentsOf: scratch.path + "/train.safetensors")
        let test = try EmbeddingFile.read(contentsOf: scratch.path + "/test.safetensors")
        let expectedTrainPaths = try ImageFolder(split: run.dataset.root + "/train").paths
            .map { String($0.dropFirst(run.dataset.root.count + "/train/".count)) }
        #expect(train.paths == expectedTrainPaths)
        #expect(test.paths.count == run.dataset.testCount)
        #expect(train.dimension == 16)
        #expect(embedTest.stdoutLines.first?.hasPrefix("embedded \(run.dataset.testCount) images (16-d embedding features) from \(run.dataset.root)/test in ") == true)

        // The embedded query against every embedded training image ranks them as search --recompute does.
        let queryRow = try #require(test.paths.firstIndex(of: String(query.dropFirst(run.dataset.root.count + "/test/".count))))
        let queryFeature = Array(test.features[(queryRow * 16)..<((queryRow + 1) * 16)])
        #expect(abs(queryFeature.reduce(0) { $0 + Double($1 * $1) } - 1) < 1e-5)
        let similarities = (0..<train.paths.count).map { row in
            zip(queryFeature, train.features[(row * 16)..<((row + 1) * 16)]).reduce(0) { $0 + Double($1.0 * $1.1) }
        }
        let best = similarities.indices.sorted { similarities[$0] > similarities[$1] }.prefix(3)
        for (line, row) in zip(search.stdoutLines[1...3], best) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            #expect(fields.last == run.dataset.root + "/train/" + train.paths[row], "line: \(line)")
            #expect(abs((Double(fields[1]) ?? .nan) - similarities[row]) <= 0.0006, "line: \(line)")
        }
    }

    @Test func searchIndexMatchesRecomputedSearch() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let query = try Self.testPaths(run)[4]
        let index = scratch.path + "/train.safetensors"
        let picture = scratch.path + "/found.png"

        let embed = try await CLI.run(["embed", "--checkpoint", run.checkpointPath, "--images", run.dataset.root + "/train",
                                       "--out", index, "--threads", "1"], in: scratch.path)
        let fromIndex = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--index", index, query,
                                           "--top", "5", "--out", picture, "--threads", "1"], in: scratch.path)
        let fromData = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--data", run.dataset.root, query,
                                          "--top", "5", "--recompute", "--threads", "1"], in: scratch.path)

        embed.expectSuccess()
        fromIndex.expectSuccess()
        fromData.expectSuccess()
        // Both find the same training images, with their class folders as classes. Images whose
        // similarities differ by float rounding alone may swap places between the two orders.
        let indexLines = fromIndex.stdoutLines
        let dataLines = fromData.stdoutLines
        try #require(indexLines.count == 9, "stdout: \(fromIndex.stdout)")
        try #require(dataLines.count == 8, "stdout: \(fromData.stdout)")
        #expect(indexLines[0] == query)
        let fields = { (line: String) in line.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        let mine = indexLines[1...5].map(fields)
        let theirs = dataLines[1...5].map(fields)
        #expect(mine.map { $0[0] } == ["1", "2", "3", "4", "5"])
        for (found, expected) in zip(mine, theirs) {
            #expect(abs((Double(found[1]) ?? .nan) - (Double(expected[1]) ?? .nan)) <= 0.0002, "\(found) against \(expected)")
        }
        #expect(Set(mine.map { $0[2] + " " + $0[3] }) == Set(theirs.map { $0[2] + " " + $0[3] }))
        #expect(indexLines[6] == dataLines[6])
        #expect(indexLines[7] == dataLines[7])
        #expect(indexLines[8] == "picture: \(picture)")
        let image = try ImageDecoder.decode(contentsOf: picture)
        let size = ImageGrid(queryGap: 8).canvasSize(rowCount: 1, columnCount: 6)
        #expect(image.width == size.width)
        #expect(image.height == size.height)
    }

    @Test func searchPooledLayerMatchesIndex() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let query = try Self.testPaths(run)[2]
        let index = scratch.path + "/pooled.safetensors"
        // Every training image is listed: the few-step network ranks all of them within 0.001
        // of each other, so only the whole list distinguishes the two layers.
        let top = String(run.dataset.trainCount)

        let embed = try await CLI.run(["embed", "--checkpoint", run.checkpointPath, "--images", run.dataset.root + "/train",
                                       "--layer", "pooled", "--out", index, "--threads", "1"], in: scratch.path)
        let fromIndex = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--index", index, query,
                                           "--top", top, "--threads", "1"], in: scratch.path)
        let fromData = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--data", run.dataset.root, query,
                                          "--top", top, "--recompute", "--layer", "pooled", "--threads", "1"], in: scratch.path)
        let embedding = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--data", run.dataset.root, query,
                                           "--top", top, "--recompute", "--threads", "1"], in: scratch.path)

        embed.expectSuccess()
        fromIndex.expectSuccess()
        fromData.expectSuccess()
        embedding.expectSuccess()
        let count = run.dataset.trainCount
        let similarities = { (result: CLIResult) in
            result.stdoutLines[1...count].map { line in
                Double(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? .nan
            }
        }
        // Both search the pooled features of the same images, so the similarities agree rank
        // by rank up to float rounding.
        for (found, expected) in zip(similarities(fromData), similarities(fromIndex)) {
            #expect(abs(found - expected) <= 0.0002, "\(found) against \(expected)")
        }
        #expect(similarities(fromData) != similarities(embedding))
    }

    @Test func searchIndexOfOtherEpochIsRejected() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let earlier = run.runDirectory + "/checkpoint-epoch1.safetensors"
        let index = scratch.path + "/epoch1.safetensors"
        let query = try Self.testPaths(run)[0]

        // Same width and layer, but the weights of epoch 1 against the checkpoint of epoch 2.
        let embed = try await CLI.run(["embed", "--checkpoint", earlier, "--images", run.dataset.root + "/train",
                                       "--out", index, "--threads", "1"], in: scratch.path)
        let search = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--index", index, query,
                                        "--threads", "1"], in: scratch.path)

        embed.expectSuccess()
        search.expectRejected(status: 2, message: "--index \(index) was written with another network than checkpoint \(run.checkpointPath) (another run, or another epoch of this one); write it again with npid embed and this checkpoint")
    }

    @Test func searchFlatIndexHasNoClasses() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let paths = try Self.testPaths(run)
        let flat = scratch.path + "/flat"
        try FileManager.default.createDirectory(atPath: flat, withIntermediateDirectories: false)
        for (number, path) in paths.prefix(3).enumerated() {
            try FileManager.default.copyItem(atPath: path, toPath: "\(flat)/\(number).jpg")
        }
        let index = scratch.path + "/flat.safetensors"

        // The index is written and searched from different working folders, with a relative --images.
        let embed = try await CLI.run(["embed", "--checkpoint", run.checkpointPath, "--images", "flat",
                                       "--out", index, "--threads", "1"], in: scratch.path)
        let search = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--index", index, paths[0], paths[1],
                                        "--top", "2", "--threads", "1"], in: run.dataset.root)

        embed.expectSuccess()
        search.expectSuccess()
        let lines = search.stdoutLines
        #expect(lines.count == 6, "stdout: \(search.stdout)")
        for line in lines where line.hasPrefix(" ") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            #expect(fields.count == 4, "line: \(line)")
            #expect(fields.dropFirst(2).first == "-", "line: \(line)")
            #expect(fields.last?.hasPrefix(flat + "/") == true, "line: \(line)")
        }
    }

    @Test func searchWarnsOfMissingImages() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let gallery = scratch.path + "/gallery"
        try FileManager.default.copyItem(atPath: run.dataset.root + "/test", toPath: gallery)
        let index = scratch.path + "/gallery.safetensors"
        let embed = try await CLI.run(["embed", "--checkpoint", run.checkpointPath, "--images", gallery,
                                       "--out", index, "--threads", "1"], in: scratch.path)
        embed.expectSuccess()
        let removed = gallery + "/" + run.dataset.classNames[0] + "/" + (try FileManager.default
            .contentsOfDirectory(atPath: gallery + "/" + run.dataset.classNames[0]).sorted()[0])
        try FileManager.default.removeItem(atPath: removed)
        let top = String(run.dataset.testCount)
        let query = try Self.testPaths(run)[0]

        let listed = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--index", index, query,
                                        "--top", top, "--threads", "1"], in: scratch.path)
        let drawn = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--index", index, query,
                                       "--top", top, "--out", scratch.path + "/all.png", "--threads", "1"], in: scratch.path)

        listed.expectSuccess()
        #expect(listed.stderrLines == ["warning: listed image \(removed) no longer exists; write --index \(index) again with npid embed"])
        #expect(drawn.status == 1, "stderr: \(drawn.stderr)")
        #expect(drawn.errorLines.first?.hasPrefix(CLI.errorPrefix + "image \(removed) of --index \(index) cannot be read (") == true,
                "stderr: \(drawn.stderr)")
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/all.png"))
    }

    @Test func searchLeavesOutQueryItself() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let index = scratch.path + "/test.safetensors"
        let embed = try await CLI.run(["embed", "--checkpoint", run.checkpointPath, "--images", run.dataset.root + "/test",
                                       "--out", index, "--threads", "1"], in: scratch.path)
        embed.expectSuccess()
        let testPaths = try Self.testPaths(run)
        let count = run.dataset.testCount

        // Two queries are indexed images, one named through a symbolic link and one through a
        // "." part. The third, a training image, is not in the index.
        let link = scratch.path + "/link.jpg"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: testPaths[2])
        let dotted = run.dataset.root + "/./test/" + URL(fileURLWithPath: testPaths[5]).deletingLastPathComponent().lastPathComponent
            + "/" + URL(fileURLWithPath: testPaths[5]).lastPathComponent
        let outside = try ImageFolder(split: run.dataset.root + "/train").paths[0]
        let search = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--index", index, link, dotted, outside,
                                        "--top", String(count + 3), "--threads", "1"], in: scratch.path)

        search.expectSuccess()
        #expect(search.stderrLines == [
            "note: query \(link) is one of the searched images; it is left out of its own matches",
            "note: query \(dotted) is one of the searched images; it is left out of its own matches",
            "note: --top \(count + 3) is more than the images there are to search (\(count), less a query's own); such queries get fewer matches",
        ])
        var found: [[String]] = []
        var sameClass: [(same: Int, matches: Int)] = []
        for line in search.stdoutLines {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            if [link, dotted, outside].contains(line) {
                found.append([])
            } else if fields.count == 4, Int(fields[0]) != nil {
                found[found.count - 1].append(fields[3])
            } else if line.hasPrefix("  same class as the query's folder"), let counts = line.split(separator: ":").last {
                let numbers = counts.split(separator: " ").compactMap { Int($0) }
                sameClass.append((numbers[0], numbers[1]))
            }
        }
        try #require(found.count == 3, "stdout: \(search.stdout)")
        #expect(Set(found[0]) == Set(testPaths).subtracting([testPaths[2]]))
        #expect(Set(found[1]) == Set(testPaths).subtracting([testPaths[5]]))
        #expect(Set(found[2]) == Set(testPaths))
        #expect(found.map(\.count) == [count - 1, count - 1, count])

        // The summary judges each query against its own number of matches.
        try #require(sameClass.count == 2)
        #expect(sameClass.map(\.matches) == [count - 1, count])
        let majority = sameClass.filter { 2 * $0.same > $0.matches }.count
        let mean = Double(sameClass[0].same + sameClass[1].same) / 2
        #expect(search.stdoutLines.last == String(format: "2 queries in class folders: %.2f of %d matches share the class on average; %d (%.1f%%) have more than half",
                                                  mean, count, majority, 50 * Double(majority)))
    }

    @Test func searchOfLargestTopListsAll() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let index = scratch.path + "/test.safetensors"
        let embed = try await CLI.run(["embed", "--checkpoint", run.checkpointPath, "--images", run.dataset.root + "/test",
                                       "--out", index, "--threads", "1"], in: scratch.path)
        embed.expectSuccess()
        let testPaths = try Self.testPaths(run)

        // The query is one of the indexed images, so the search requests one row more than --top.
        let search = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--index", index, testPaths[0],
                                        "--top", String(Int.max), "--threads", "1"], in: scratch.path)

        search.expectSuccess()
        let matches = search.stdoutLines.filter { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            return fields.count == 4 && Int(fields[0]) != nil
        }
        #expect(matches.count == run.dataset.testCount - 1, "stdout: \(search.stdout)")
    }

    @Test func searchOfOnlyImageHasNoMatches() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let testPaths = try Self.testPaths(run)
        let folder = scratch.path + "/one"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        try FileManager.default.copyItem(atPath: testPaths[0], toPath: folder + "/a.jpg")
        let index = scratch.path + "/one.safetensors"
        let embed = try await CLI.run(["embed", "--checkpoint", run.checkpointPath, "--images", folder,
                                       "--out", index, "--threads", "1"], in: scratch.path)
        embed.expectSuccess()

        let both = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--index", index, "one/a.jpg",
                                      testPaths[1], "--threads", "1"], in: scratch.path)
        let alone = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--index", index, "one/a.jpg",
                                       "--threads", "1"], in: scratch.path)

        both.expectSuccess()
        #expect(both.stderrLines.first == "note: query one/a.jpg is the only image of --index \(index), so it has no matches")
        #expect(both.stdoutLines.first == testPaths[1], "stdout: \(both.stdout)")
        #expect(both.stdoutLines.dropFirst().first?.hasSuffix(" " + folder + "/a.jpg") == true, "stdout: \(both.stdout)")
        #expect(!both.stdoutLines.contains("one/a.jpg"))
        alone.expectRejected(status: 2, message: "--index \(index) contains no image but the queries themselves; search a larger folder")
    }

    @Test(arguments: [
        ("x.jpg", "--out x.jpg must end in .png, because the picture is written as PNG"),
        ("QUERY", "--out QUERY would overwrite the input QUERY; write to another file"),
        ("folder.png", "--out folder.png is a folder; name a file to write"),
    ])
    func searchRejectsBadPictureOutput(output: String, message: String) async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let query = scratch.path + "/query.png"
        try FileManager.default.copyItem(atPath: try Self.testPaths(run)[0], toPath: query)
        try FileManager.default.createDirectory(atPath: scratch.path + "/folder.png", withIntermediateDirectories: false)
        let outputPath = output == "QUERY" ? query : output
        let before = try Data(contentsOf: URL(fileURLWithPath: query))

        let result = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--data", run.dataset.root, query,
                                        "--out", outputPath], in: scratch.path)

        result.expectRejected(status: 2, message: message.replacingOccurrences(of: "QUERY", with: query))
        #expect(try Data(contentsOf: URL(fileURLWithPath: query)) == before)
    }

    @Test func embedSkipsBadImagesWhenAsked() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let imageFolder = try scratch.makeFolder("photos")
        let classFolder = run.dataset.root + "/test/" + run.dataset.classNames[0]
        let goodNames = try FileManager.default.contentsOfDirectory(atPath: classFolder).sorted().prefix(2)
        for name in goodNames {
            try FileManager.default.copyItem(atPath: classFolder + "/" + name, toPath: imageFolder + "/" + name)
        }
        // Sorted between the two good images, so the kept rows must skip over it.
        let badName = goodNames.first! + "x.jpg"
        try "not a picture".write(toFile: imageFolder + "/" + badName, atomically: true, encoding: .utf8)
        let output = scratch.path + "/photos.safetensors"

        let failed = try await CLI.run(["embed", "--checkpoint", run.checkpointPath, "--images", imageFolder,
                                        "--out", output, "--threads", "1"], in: scratch.path)
        let failedOutputExists = FileManager.default.fileExists(atPath: output)
        let skipped = try await CLI.run(["embed", "--checkpoint", run.checkpointPath, "--images", imageFolder,
                                         "--out", output, "--threads", "1", "--on-bad-image", "skip"], in: scratch.path)

        failed.expectRejected(status: 1, message: "file \(imageFolder)/\(badName) is not a JPEG or PNG image (unrecognised leading bytes); convert it to JPEG or PNG or delete it, or pass --on-bad-image skip to leave it out")
        #expect(!failedOutputExists)
        skipped.expectSuccess()
        #expect(skipped.stderrLines == ["warning: left out 1 bad image file (--on-bad-image skip): \(imageFolder)/\(badName) (not a JPEG or PNG image)"])
        let index = try EmbeddingFile.read(contentsOf: output)
        #expect(index.paths == Array(goodNames))
        #expect(index.features.count == 2 * 16)
    }

    @Test func embedRejectsOutputAmongImages() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let gallery = scratch.path + "/gallery"
        try FileManager.default.copyItem(atPath: run.dataset.root + "/test", toPath: gallery)
        let image = gallery + "/" + run.dataset.classNames[1] + "/" + (try FileManager.default
            .contentsOfDirectory(atPath: gallery + "/" + run.dataset.classNames[1]).sorted()[0])
        let before = try Data(contentsOf: URL(fileURLWithPath: image))
        try FileManager.default.createDirectory(atPath: scratch.path + "/empty", withIntermediateDirectories: false)

        let overwrite = try await CLI.run(["embed", "--checkpoint", run.checkpointPath, "--images", gallery,
                                           "--out", image, "--threads", "1"], in: scratch.path)
        let empty = try await CLI.run(["embed", "--checkpoint", run.checkpointPath, "--images", scratch.path + "/empty",
                                       "--out", scratch.path + "/e.safetensors", "--threads", "1"], in: scratch.path)

        overwrite.expectRejected(status: 2, message: "--out \(image) would overwrite the input \(image); write to another file")
        #expect(try Data(contentsOf: URL(fileURLWithPath: image)) == before)
        empty.expectRejected(status: 2, message: "--images \(scratch.path)/empty contains no .jpg, .jpeg or .png file in it or its sub-folders; pass the folder that contains the images")
    }

    /// neighbors and search read the images of --data, so a picture written over one of them
    /// would destroy the user's image, and the checkpoint would no longer match the folder.
    @Test func pictureOutputAmongDataImagesIsRejected() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let data = scratch.path + "/data"
        try FileManager.default.copyItem(atPath: run.dataset.root, toPath: data)
        // Photo folders hold PNG files, which the .png check on --out lets through, so the first JPEG
        // of each split is renamed to .png. npid decodes it by its leading bytes.
        var images: [String] = []
        for split in ["train", "test"] {
            let jpeg = try ImageFolder(split: data + "/" + split).paths[0]
            let png = String(jpeg.dropLast(4)) + ".png"
            try FileManager.default.moveItem(atPath: jpeg, toPath: png)
            images.append(png)
        }
        let trainImage = images[0]
        let testImage = images[1]
        let query = scratch.path + "/query.png"
        try FileManager.default.copyItem(atPath: testImage, toPath: query)
        let trainBefore = try Data(contentsOf: URL(fileURLWithPath: trainImage))
        let testBefore = try Data(contentsOf: URL(fileURLWithPath: testImage))

        let neighborsOverTrain = try await CLI.run(["neighbors", "--checkpoint", run.checkpointPath, "--data", data,
                                                    "--out", trainImage, "--recompute", "--threads", "1"], in: scratch.path)
        let neighborsOverTest = try await CLI.run(["neighbors", "--checkpoint", run.checkpointPath, "--data", data,
                                                   "--out", testImage, "--recompute", "--threads", "1"], in: scratch.path)
        let searchOverTrain = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--data", data, query,
                                                 "--out", trainImage, "--recompute", "--threads", "1"], in: scratch.path)

        let message = "--out \(trainImage) would overwrite the input \(trainImage); write to another file"
        neighborsOverTrain.expectRejected(status: 2, message: message)
        neighborsOverTest.expectRejected(status: 2, message: "--out \(testImage) would overwrite the input \(testImage); write to another file")
        searchOverTrain.expectRejected(status: 2, message: message)
        #expect(try Data(contentsOf: URL(fileURLWithPath: trainImage)) == trainBefore)
        #expect(try Data(contentsOf: URL(fileURLWithPath: testImage)) == testBefore)
    }

    /// A copy of a checkpoint stands for an earlier epoch's file of the same run.
    @Test func embedRejectsCheckpointAsOutput() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let earlier = scratch.path + "/checkpoint-epoch1.safetensors"
        try FileManager.default.copyItem(atPath: run.checkpointPath, toPath: earlier)
        let before = try Data(contentsOf: URL(fileURLWithPath: earlier))

        let result = try await CLI.run(["embed", "--checkpoint", run.checkpointPath, "--images", run.dataset.root + "/test",
                                        "--out", earlier, "--threads", "1"], in: scratch.path)

        result.expectRejected(status: 2, message: "--out \(earlier) is an npid checkpoint, which embed would overwrite; write the embeddings to another file")
        #expect(try Data(contentsOf: URL(fileURLWithPath: earlier)) == before)
    }

    @Test func searchIndexOfOtherWidthIsRejected() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let query = try Self.testPaths(run)[0]
        let index = scratch.path + "/other.safetensors"
        // Seven-dimensional rows, as from a checkpoint trained with --low-dim 7.
        try EmbeddingFile(features: [Float](repeating: 0.5, count: 14), dimension: 7, paths: ["a/1.jpg", "b/2.jpg"],
                          root: scratch.path, checkpoint: "other.safetensors", layer: .embedding).write(to: index)

        let result = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--index", index, query,
                                        "--threads", "1"], in: scratch.path)

        // A file without a network fingerprint, as earlier versions wrote, is searched with a warning.
        #expect(result.status == 2, "stderr: \(result.stderr)")
        #expect(result.stderrLines == [
            "warning: --index \(index) records no network fingerprint, so npid cannot check that the checkpoint wrote it; write it again with npid embed to add one",
            CLI.errorPrefix + "--index \(index) contains 7-d embedding features but checkpoint \(run.checkpointPath) gives 16-d ones; write it again with npid embed and this checkpoint",
        ])
    }

    @Test(arguments: [
        (["--recompute"], "--recompute applies to --data; an --index file already contains features computed without augmentation"),
        (["--data", "DATA"], "--data and --index both name the images to search; pass one of them"),
        (["--layer", "pooled"], "--layer applies to --data; an --index file already records the layer npid embed computed"),
    ])
    func searchIndexRejectsFlag(flags: [String], message: String) async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let query = try Self.testPaths(run)[0]
        let arguments = flags.map { $0 == "DATA" ? run.dataset.root : $0 }

        let result = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--index", scratch.path + "/x.safetensors",
                                        query] + arguments, in: scratch.path)

        result.expectRejected(status: 2, message: message)
    }

    @Test(arguments: [
        (["--layer", "pooled"], "--layer pooled needs --recompute, because the memory bank stores only the embedding"),
        (["--layer", "conv5", "--recompute"], "unknown --layer 'conv5'; choose embedding or pooled"),
    ])
    func searchRejectsBadLayer(flags: [String], message: String) async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                        try Self.testPaths(run)[0]] + flags, in: scratch.path)

        result.expectRejected(status: 2, message: message)
    }

    @Test func searchTakesTrainingSplitFolder() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let query = try Self.testPaths(run)[1]

        let fromRoot = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                          query, "--top", "4", "--threads", "1"], in: scratch.path)
        let fromSplit = try await CLI.run(["search", "--checkpoint", run.checkpointPath,
                                           "--train-dir", run.dataset.root + "/train", query, "--top", "4", "--threads", "1"],
                                          in: scratch.path)
        let both = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                      "--train-dir", run.dataset.root + "/train", query], in: scratch.path)

        fromRoot.expectSuccess()
        fromSplit.expectSuccess()
        #expect(fromSplit.stdoutLines.count == 7, "stdout: \(fromSplit.stdout)")
        #expect(fromSplit.stdoutLines == fromRoot.stdoutLines)
        both.expectRejected(status: 2, message: "--data and --train-dir both name the images to search; pass one of them")
    }

    /// search reads the training split as train does, so it notes the folders it leaves out.
    @Test func searchNotesNestedFolders() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let query = try Self.testPaths(run)[1]
        let split = scratch.path + "/train"
        try FileManager.default.copyItem(atPath: run.dataset.root + "/train", toPath: split)
        let nested = split + "/" + run.dataset.classNames[0] + "/old"
        try FileManager.default.createDirectory(atPath: nested, withIntermediateDirectories: false)
        try FileManager.default.copyItem(atPath: query, toPath: nested + "/copy.jpg")

        let result = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--train-dir", split,
                                        query, "--top", "2", "--threads", "1"], in: scratch.path)

        result.expectSuccess()
        #expect(result.stderrLines == ["note: folder \(nested) inside a class folder is not read; npid reads only the images directly in each class folder"])
    }

    @Test func searchNamesMissingTrainDir() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let query = try Self.testPaths(run)[1]
        let missing = scratch.path + "/no-such-split"

        let result = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--train-dir", missing, query],
                                       in: scratch.path)

        result.expectRejected(status: 2, message: "--train-dir \(missing) does not exist or is not a folder; pass the training split the run trained on")
    }

    /// search checks --data ROOT as the other commands do, before it appends train/ to it.
    @Test func searchNamesMissingOrFileDataRoot() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let query = try Self.testPaths(run)[1]
        let missing = scratch.path + "/no-such-root"

        let absent = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--data", missing, query],
                                       in: scratch.path)
        let file = try await CLI.run(["search", "--checkpoint", run.checkpointPath, "--data", query, query],
                                     in: scratch.path)

        absent.expectRejected(status: 2, message: "data folder \(missing) does not exist; pass --data ROOT where ROOT contains train/ and test/ folders of class sub-folders")
        file.expectRejected(status: 2, message: "\(query) is a file, not a folder; pass the image folder that contains train/ and test/ folders of class sub-folders")
    }

    @Test func searchWithoutGalleryIsRejected() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["search", "--checkpoint", run.checkpointPath, try Self.testPaths(run)[0]],
                                       in: scratch.path)

        result.expectRejected(status: 2, message: "npid search needs --data ROOT (search its training split), --train-dir DIR or --index FILE (an npid embed file)")
    }

    @Test func runWithSkippedImageIsSearchable() async throws {
        let dataset = try CLIDataset.shared.get()
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let dataRoot = scratch.path + "/data"
        try FileManager.default.copyItem(atPath: dataset.root, toPath: dataRoot)
        let badFile = "\(dataRoot)/train/\(dataset.classNames[0])/zz-bad.jpg"
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: badFile))
        let runDirectory = scratch.path + "/run"
        let train = try await CLI.run(["train", "--data", dataRoot, "--run-dir", runDirectory, "--epochs", "1",
                                       "--on-bad-image", "skip"] + CLIRuns.smallModelFlags, in: scratch.path)
        train.expectSuccess()
        let checkpoint = runDirectory + "/checkpoint.safetensors"
        let query = try ImageFolder(split: dataRoot + "/test").paths[0]
        let warning = "warning: left out 1 bad image file (--on-bad-image skip): \(badFile) (not a JPEG or PNG image)"

        // search, report --data and linear each accept the flag and print the same warning.
        let search = try await CLI.run(["search", "--checkpoint", checkpoint, "--data", dataRoot, query, "--top", "3",
                                        "--on-bad-image", "skip", "--threads", "1"], in: scratch.path)
        let report = try await CLI.run(["report", runDirectory, "--data", dataRoot, "--on-bad-image", "skip",
                                        "--threads", "1"], in: scratch.path)
        let linear = try await CLI.run(["linear", "--checkpoint", checkpoint, "--data", dataRoot, "--epochs", "1",
                                        "--on-bad-image", "skip", "--threads", "1"], in: scratch.path)
        let failing = try await CLI.run(["search", "--checkpoint", checkpoint, "--data", dataRoot, query,
                                         "--threads", "1"], in: scratch.path)

        search.expectSuccess()
        #expect(search.stderrLines.contains(warning), "stderr: \(search.stderr)")
        #expect(search.stdoutLines.filter { $0.hasPrefix("   ") }.count == 3, "stdout: \(search.stdout)")
        report.expectSuccess()
        #expect(report.stderrLines.contains(warning), "stderr: \(report.stderr)")
        linear.expectSuccess()
        #expect(linear.stderrLines.contains(warning), "stderr: \(linear.stderr)")
        #expect(failing.status == 1, "stderr: \(failing.stderr)")
        #expect(failing.errorLines.first?.hasSuffix("or pass --on-bad-image skip to leave it out") == true,
                "stderr: \(failing.stderr)")
    }

    // MARK: linear, eval and bench

    @Test func linearReportsConsistentAccuracy() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["linear", "--checkpoint", run.checkpointPath, "--data", run.dataset.root,
                                        "--epochs", "3", "--threads", "1"], in: scratch.path)

        result.expectSuccess()
        let lines = result.stdoutLines
        try #require(lines.count == 1 + run.dataset.classNames.count, "stdout: \(result.stdout)")
        #expect(lines[0].hasPrefix("linear top-1 "))
        #expect(lines[0].contains("(pooled features, 3 epochs, \(run.dataset.testCount) test images; training top-1 "))
        // Every class has the same number of test images, so top-1 is the mean of the per-class figures.
        let top1 = Double(lines[0].dropFirst("linear top-1 ".count).prefix { $0 != "%" }) ?? .nan
        let perClass = lines.dropFirst().map { Double($0.split(separator: " ").last?.dropLast() ?? "") ?? .nan }
        #expect(abs(perClass.reduce(0, +) / Double(perClass.count) - top1) < 0.01, "stdout: \(result.stdout)")
        #expect(result.stderrLines.contains { $0.hasPrefix("pooled features (64-d) of \(run.dataset.trainCount) training and \(run.dataset.testCount) test images") })
    }

    @Test func linearTakesSplitFolders() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let flags = ["--epochs", "2", "--threads", "1"]

        let fromRoot = try await CLI.run(["linear", "--checkpoint", run.checkpointPath, "--data", run.dataset.root] + flags,
                                         in: scratch.path)
        let fromSplits = try await CLI.run(["linear", "--checkpoint", run.checkpointPath,
                                            "--train-dir", run.dataset.root + "/train",
                                            "--test-dir", run.dataset.root + "/test"] + flags, in: scratch.path)

        fromRoot.expectSuccess()
        fromSplits.expectSuccess()
        #expect(!fromSplits.stdoutLines.isEmpty)
        #expect(fromSplits.stdoutLines == fromRoot.stdoutLines)
    }

    @Test func linearRejectsUnknownLayer() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["linear", "--checkpoint", "x", "--data", "y", "--layer", "conv5"], in: scratch.path)

        result.expectRejected(status: 2, message: "unknown --layer 'conv5'; choose pooled or embedding")
    }

    @Test func evalUsesKnnTemperature() async throws {
        let run = try await CLIRuns.twoEpochs.value
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }
        let base = ["eval", "--checkpoint", run.checkpointPath, "--data", run.dataset.root, "--threads", "1"]

        let custom = try await CLI.run(base + ["--knn-t", "0.5"], in: scratch.path)
        let same = try await CLI.run(base + ["--knn-t", "0.07"], in: scratch.path)
        let zero = try await CLI.run(base + ["--knn-t", "0"], in: scratch.path)

        custom.expectSuccess()
        #expect(custom.stdoutLines.first?.hasSuffix("(memory bank, k=5, σ=0.5, \(run.dataset.testCount) test images, \(run.dataset.trainCount) training images)") == true,
                "stdout: \(custom.stdout)")
        same.expectSuccess()
        let trainingLine = run.result.stdoutLines.first { $0.contains("(memory bank,") }
        #expect(CLIReportTests.figures(same.stdoutLines.first) == CLIReportTests.figures(trainingLine))
        zero.expectRejected(status: 2, message: "--knn-t must be a positive temperature, got 0.0")
    }

    @Test func benchKNNPrintsFigures() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let result = try await CLI.run(["bench", "--knn", "--bank", "3000", "--queries", "100", "--dim", "8",
                                        "--classes", "5", "--knn-k", "7", "--bank-chunk", "500", "--query-chunk", "30",
                                        "--threads", "1"], in: scratch.path)

        result.expectSuccess()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(object["event"] as? String == "bench")
        #expect(object["mode"] as? String == "knn")
        #expect(object["bank"] as? Int == 3000)
        #expect(object["queries"] as? Int == 100)
        #expect(object["k"] as? Int == 7)
        #expect(object["bank_chunk"] as? Int == 500)
        // 30 × 500 floats and 3000 × 8 floats, in MiB with one decimal.
        #expect(object["similarity_block_mb"] as? Double == 0.1)
        #expect(object["bank_mb"] as? Double == 0.1)
        let peak = try #require(object["peak_rss_mb"] as? Double)
        let before = try #require(object["rss_before_knn_mb"] as? Double)
        #expect(peak >= before)
        #expect((object["seconds"] as? Double).map { $0 > 0 } == true)
    }

    @Test func benchNeedsOneMode() async throws {
        let scratch = try CLIScratchFolder()
        defer { scratch.remove() }

        let none = try await CLI.run(["bench", "--bank", "10"], in: scratch.path)
        let zero = try await CLI.run(["bench", "--knn", "--bank", "0"], in: scratch.path)

        none.expectRejected(status: 2, message: "npid bench needs exactly one mode, one of --loader, --train, --eval, --knn; run npid bench --help for the options")
        zero.expectRejected(status: 2, message: "--bank must be at least 1, got 0")
    }
}
