import Foundation
import NPID
import Torch

/// `npid neighbors`: a picture of test images next to their nearest training images.
enum NeighborsCommand {
    static let specs: [OptionSpec] = [
        OptionSpec("--checkpoint", value: "FILE", help: "checkpoint.safetensors written by npid train"),
    ] + DataOptions.specs + [
        OptionSpec("--out", value: "FILE.png", help: "where to write the picture"),
        OptionSpec("--queries", value: "LIST", help: "test images to show: comma-separated test indices (0-based, dataset order) or random:N (default: --rows images cycling through the classes)"),
        OptionSpec("--rows", value: "N", help: "rows at most, for the default queries and for --failures (default 10)"),
        OptionSpec("--failures", help: "show only queries whose neighbours mostly belong to other classes, most confused first (among all test images, or among --queries)"),
        OptionSpec("--seed", value: "S", help: "seed of random:N (default \(TrainingConfiguration.defaults.seed))"),
        OptionSpec("--neighbors", value: "N", help: "nearest training images per query (default 10)"),
        OptionSpec("--recompute", help: "search recomputed training features instead of the memory bank"),
    ] + networkRuntimeSpecs

    static let help = helpText(
        usage: "npid neighbors --checkpoint FILE --data ROOT --out FILE.png",
        summary: """
        Draws one row per query test image: the query (blue frame), then its nearest training
        images by cosine similarity, framed green when they share the query's class and red
        when not. Also prints each row as text. Examples:
          npid neighbors --checkpoint run/checkpoint.safetensors --data ROOT --out nn.png --queries 3,17,42
          npid neighbors --checkpoint run/checkpoint.safetensors --data ROOT --out fail.png --failures
        """,
        specs: specs)

    static func run(_ arguments: [String]) throws {
        let options = try ParsedOptions(arguments, specs: specs, command: "neighbors")
        let checkpointPath = try options.requiredString("--checkpoint")
        let outputPath = try options.requiredString("--out")
        let rowLimit = try options.int("--rows") ?? 10
        let neighborCount = try options.int("--neighbors") ?? 10
        guard rowLimit >= 1 else { throw UsageError("--rows must be at least 1, got \(rowLimit)") }
        guard neighborCount >= 1 else { throw UsageError("--neighbors must be at least 1, got \(neighborCount)") }
        let dataRequest = try DataOptions.request(options, command: "neighbors")
        let selection = try QuerySelection(parsing: options.string("--queries"))
        let seed = try seedOption(options)
        let runtime = try runtimeOptions(options)
        try requireFile(checkpointPath, flag: "--checkpoint")
        try requirePictureOutput(outputPath, flag: "--out", inputs: [checkpointPath])

        let model = try TrainedModel(checkpointPath: checkpointPath, runtime: runtime)
        let data = try DataOptions.load(dataRequest, limitPerClass: model.configuration.limitPerClass,
                                        testLimitPerClass: model.configuration.testLimitPerClass)
        try requireNotAmongImages(outputPath, flag: "--out", images: data.train.paths + data.test.paths)
        try model.checkClasses(of: data)
        let bank = try model.trainingFeatures(of: data.train, recompute: options.has("--recompute"))

        let failuresOnly = options.has("--failures")
        noteCaps(selection: selection, rows: failuresOnly ? nil : rowLimit, neighborCount: neighborCount, data: data,
                 defaults: Set(["--rows", "--neighbors"].filter { !options.has($0) }))
        let queries = try selection.indices(testLabels: data.test.labels, classCount: data.classNames.count,
                                            rows: failuresOnly ? nil : rowLimit, seed: seed)
        let queryStore = ImageStore(images: try queries.map { try data.test[$0] }, labels: queries.map { data.test.labels[$0] },
                                    classNames: data.classNames)
        let queryFeatures = try model.features(of: queryStore)
        let neighbors = try nearestNeighbors(queries: queryFeatures, bank: bank, count: neighborCount)
        var rows = RetrievalExamples.rows(queries: queries, queryLabels: data.test.labels, neighbors: neighbors,
                                          bankLabels: data.train.labels)
        if failuresOnly {
            rows = RetrievalExamples.failures(rows, limit: rowLimit)
            guard !rows.isEmpty else {
                let neighborPhrase = counted(min(neighborCount, data.train.count), "neighbour")
                Console.output("no query among \(counted(queries.count, "test image")) has most of its \(neighborPhrase) in other classes; no picture written")
                return
            }
        }

        for row in rows {
            let label = data.test.labels[row.query]
            var line = "\(data.test.paths[row.query]) [\(data.classNames[label])]:"
            for (neighbor, neighborLabel) in zip(row.neighbors, row.neighborLabels) {
                line += String(format: " %@ %.3f", data.classNames[neighborLabel], neighbor.similarity)
            }
            Console.output(line)
        }
        let picture = try RetrievalExamples.picture(rows, queryImage: { try data.test[$0.query] }, bank: data.train)
        try PNGEncoder.write(picture, to: outputPath)
        let sameClass = rows.reduce(0) { $0 + $1.sameClassCount }
        let neighborTotal = rows.reduce(0) { $0 + $1.neighbors.count }
        Console.output(String(format: "%d of %d neighbours share the query's class (%.1f%%); picture: %@",
                              sameClass, neighborTotal, 100 * Double(sameClass) / Double(max(neighborTotal, 1)), outputPath))
    }

    /// Logs a note for each request that the data set is too small for, so that a picture
    /// smaller than requested is explained. `rows` is nil with --failures, where it caps the
    /// failures found rather than the queries. `defaults` names the flags left at their default
    /// values, so that a note does not quote a flag the user never passed as theirs.
    static func noteCaps(selection: QuerySelection, rows: Int?, neighborCount: Int, data: TrainingData,
                         defaults: Set<String> = []) {
        let testImages = counted(data.test.count, "test image")
        let quoted = { (flag: String) in defaults.contains(flag) ? "the default " + flag : flag }
        if case .random(let count) = selection, count > data.test.count {
            Console.log("note: --queries random:\(count) is more than the \(testImages); all \(data.test.count) are queries")
        }
        if selection == .cyclingClasses, let rows, rows > data.test.count {
            Console.log("note: \(quoted("--rows")) \(rows) is more than the \(testImages); the picture has \(counted(data.test.count, "row"))")
        }
        if neighborCount > data.train.count {
            Console.log("note: \(quoted("--neighbors")) \(neighborCount) is more than the \(counted(data.train.count, "training image")); each query gets \(data.train.count)")
        }
    }

    /// The test images chosen as query rows by --queries.
    enum QuerySelection: Equatable {
        /// No --queries: images cycling through the classes.
        case cyclingClasses
        case indices([Int])
        case random(count: Int)

        init(parsing text: String?) throws {
            guard let text else {
                self = .cyclingClasses
                return
            }
            if text.hasPrefix("random:") {
                guard let count = Int(text.dropFirst("random:".count)), count >= 1 else {
                    throw UsageError("--queries \(text) is invalid; random:N needs a whole number N of at least 1, such as random:20")
                }
                self = .random(count: count)
                return
            }
            var indices: [Int] = []
            for field in text.split(separator: ",", omittingEmptySubsequences: false) {
                let trimmed = field.trimmingCharacters(in: .whitespaces)
                guard let index = Int(trimmed), index >= 0 else {
                    throw UsageError("--queries \(text) is invalid: '\(trimmed)' is not a test index; give comma-separated whole numbers from 0, such as 3,17,42, or random:N")
                }
                indices.append(index)
            }
            self = .indices(indices)
        }

        /// Returns the query indices for a test split with `testLabels`. `rows` caps the
        /// default selection, and nil takes every test image (the candidates of --failures).
        func indices(testLabels: [Int], classCount: Int, rows: Int?, seed: UInt64) throws -> [Int] {
            switch self {
            case .cyclingClasses:
                guard let rows else { return Array(testLabels.indices) }
                return RetrievalExamples.indicesCyclingClasses(labels: testLabels, classCount: classCount, count: rows)
            case .indices(let indices):
                if let outside = indices.first(where: { $0 >= testLabels.count }) {
                    throw UsageError("--queries index \(outside) is out of range; the test split has \(testLabels.count) images, indices 0 to \(testLabels.count - 1)")
                }
                return indices
            case .random(let count):
                return RetrievalExamples.randomIndices(count: count, below: testLabels.count, seed: seed)
            }
        }
    }
}
