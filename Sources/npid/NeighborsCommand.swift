import Foundation
import NPID
import Torch

/// `npid neighbors`: a picture of test images next to their nearest training images.
enum NeighborsCommand {
    static let specs: [OptionSpec] = [
        OptionSpec("--checkpoint", value: "FILE", help: "checkpoint.safetensors written by npid train"),
    ] + DataOptions.specs + [
        OptionSpec("--out", value: "FILE.png", help: "where to write the picture"),
        OptionSpec("--queries", value: "N", help: "test images to show, one row each, cycling through the classes (default 10)"),
        OptionSpec("--neighbors", value: "N", help: "nearest training images per query (default 10)"),
        OptionSpec("--recompute", help: "search recomputed training features instead of the memory bank"),
        OptionSpec("--device", value: "DEV", help: "cpu, cuda or cuda:N (default cpu)"),
        OptionSpec("--threads", value: "N", help: "libtorch threads (default: one per core on cpu, 1 on cuda)"),
        OptionSpec("--workers", value: "N", help: "loader threads (default: 1 on cpu, one per core but one on cuda)"),
        OptionSpec("--no-channels-last", help: "keep NCHW memory layout"),
    ]

    static let help = helpText(
        usage: "npid neighbors --checkpoint FILE --data ROOT --out FILE.png",
        summary: """
        Draws one row per query test image: the query (blue frame), then its nearest training
        images by cosine similarity, framed green when they share the query's class and red
        when not. Also prints each row as text.
        """,
        specs: specs)

    static func run(_ arguments: [String]) throws {
        let options = try ParsedOptions(arguments, specs: specs, command: "neighbors")
        let checkpointPath = try options.requiredString("--checkpoint")
        let outputPath = try options.requiredString("--out")
        let queryCount = try options.int("--queries") ?? 10
        let neighborCount = try options.int("--neighbors") ?? 10
        guard queryCount >= 1 else { throw UsageError("--queries must be at least 1, got \(queryCount)") }
        guard neighborCount >= 1 else { throw UsageError("--neighbors must be at least 1, got \(neighborCount)") }
        let dataRequest = try DataOptions.request(options, command: "neighbors")
        let runtime = try runtimeOptions(options)
        try requireFile(checkpointPath, flag: "--checkpoint")
        let outputFolder = URL(fileURLWithPath: outputPath).deletingLastPathComponent().path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: outputFolder, isDirectory: &isFolder), isFolder.boolValue else {
            throw UsageError("--out \(outputPath): folder \(outputFolder) does not exist; create it or write the picture elsewhere")
        }

        let model = try TrainedModel(checkpointPath: checkpointPath, runtime: runtime)
        let data = try DataOptions.load(dataRequest, limitPerClass: model.configuration.limitPerClass,
                                        testLimitPerClass: model.configuration.testLimitPerClass)
        try model.checkClasses(of: data)
        let bank = try model.trainingFeatures(of: data.train, recompute: options.has("--recompute"))

        let queries = queryIndices(labels: data.test.labels, classCount: data.classNames.count, count: queryCount)
        let queryStore = ImageStore(images: try queries.map { try data.test[$0] }, labels: queries.map { data.test.labels[$0] },
                                    classNames: data.classNames)
        let queryFeatures = try model.features(of: queryStore)
        let neighbors = try nearestNeighbors(queries: queryFeatures, bank: bank, count: neighborCount)

        var rows: [[GridTile]] = []
        var sameClass = 0
        for (query, found) in zip(queries, neighbors) {
            let label = data.test.labels[query]
            var row = [GridTile(image: try data.test[query], border: .query)]
            var line = "\(data.test.paths[query]) [\(data.classNames[label])]:"
            for (index, similarity) in found {
                let match = data.train.labels[index] == label
                sameClass += match ? 1 : 0
                row.append(GridTile(image: try data.train[index], border: match ? .match : .mismatch))
                line += String(format: " %@ %.3f", data.classNames[data.train.labels[index]], similarity)
            }
            rows.append(row)
            Console.output(line)
        }
        try PNGEncoder.write(ImageGrid(queryGap: 8).render(rows: rows), to: outputPath)
        let shown = neighbors.reduce(0) { $0 + $1.count }
        Console.output(String(format: "%d of %d neighbours share the query's class (%.1f%%); picture: %@",
                              sameClass, shown, 100 * Double(sameClass) / Double(max(shown, 1)), outputPath))
    }

    /// Test indices that cycle through the classes: the first image of each class, then
    /// the second of each, and so on.
    static func queryIndices(labels: [Int], classCount: Int, count: Int) -> [Int] {
        var byClass = [[Int]](repeating: [], count: classCount)
        for (index, label) in labels.enumerated() {
            byClass[label].append(index)
        }
        var result: [Int] = []
        var round = 0
        while result.count < count && round < (byClass.map(\.count).max() ?? 0) {
            for members in byClass where round < members.count && result.count < count {
                result.append(members[round])
            }
            round += 1
        }
        return result
    }
}
