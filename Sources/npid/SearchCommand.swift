import Foundation
import NPID
import Torch

/// `npid search`: the training images most similar to any query image files.
enum SearchCommand {
    static let specs: [OptionSpec] = [
        OptionSpec("--checkpoint", value: "FILE", help: "checkpoint.safetensors written by npid train"),
        OptionSpec("--data", value: "ROOT", help: "image folder whose train/ split is searched (the one the run trained on)"),
        OptionSpec("--train-dir", value: "DIR", help: "training split folder the run trained on (one sub-folder per class), instead of --data"),
        OptionSpec("--index", value: "FILE", help: "embeddings file written by npid embed with this checkpoint; its images are searched instead of --data"),
        OptionSpec("--top", value: "N", help: "most similar training images per query (default 10)"),
        OptionSpec("--out", value: "FILE.png", help: "also draw one row per query: the query (blue frame), then its matches, framed green when they share the class of the query's folder, red when not, and grey when the folder is not a class"),
        OptionSpec("--recompute", help: "search training features recomputed without augmentation instead of the memory bank"),
        OptionSpec("--layer", value: "NAME", help: "with --recompute: embedding (the D-dim feature the memory bank stores) or pooled (backbone output before the projection) (default embedding)"),
        DataOptions.badImageSpec,
    ] + networkRuntimeSpecs

    static let help = helpText(
        usage: "npid search --checkpoint FILE (--data ROOT | --train-dir DIR | --index FILE) QUERY_IMAGE... [--top N] [--out FILE.png]",
        summary: """
        For each query image (any JPEG or PNG file, of any size), prints the N most similar
        training images by cosine similarity of their features: rank, similarity, class and
        path, then how many matches each class has. With --recompute --layer pooled, it compares
        the backbone's pooled output instead of the D-dim feature. With --index, it searches the
        images of an npid embed file instead, and an image's class is the name of its folder. A query
        that is itself one of the searched images is left out of its own matches. A query
        inside a folder named after a training class (test/cat/0001.jpg) also gets the
        number of matches of that class, and a summary line follows when there are several
        such queries. Example:
          npid search --checkpoint runs/c10/checkpoint.safetensors --data cifar10-jpeg photo.jpg
          npid embed --checkpoint runs/c10/checkpoint.safetensors --images photos --out photos.safetensors
          npid search --checkpoint runs/c10/checkpoint.safetensors --index photos.safetensors photo.jpg
        """,
        specs: specs)

    static func run(_ arguments: [String]) throws {
        let options = try ParsedOptions(arguments, specs: specs, command: "search", allowsPositional: true)
        let checkpointPath = try options.requiredString("--checkpoint")
        let dataRoot = options.string("--data")
        let indexPath = options.string("--index")
        let galleryFlags = ["--data", "--train-dir", "--index"].filter { options.has($0) }
        guard !galleryFlags.isEmpty else {
            throw UsageError("npid search needs --data ROOT (search its training split), --train-dir DIR or --index FILE (an npid embed file)")
        }
        guard galleryFlags.count == 1 else {
            throw UsageError("\(galleryFlags[0]) and \(galleryFlags[1]) both name the images to search; pass one of them")
        }
        // The training split: ROOT/train for --data, the folder itself for --train-dir.
        let trainSplit = dataRoot.map { $0 + "/train" } ?? options.string("--train-dir")
        if let dataRoot {
            try TrainingData.checkRoot(dataRoot)
        }
        if let trainDirectory = options.string("--train-dir"), !CheckDataCommand.isFolder(trainDirectory) {
            throw UsageError("--train-dir \(trainDirectory) does not exist or is not a folder; pass the training split the run trained on")
        }
        if indexPath != nil && options.has("--on-bad-image") {
            throw UsageError("--on-bad-image applies to --data; an --index file lists only images that decoded")
        }
        let policy = try DataOptions.badImagePolicy(options)
        if indexPath != nil && options.has("--recompute") {
            throw UsageError("--recompute applies to --data; an --index file already contains features computed without augmentation")
        }
        let layer = try featureLayerOption(options, default: .embedding)
        if options.has("--layer") {
            guard indexPath == nil else {
                throw UsageError("--layer applies to --data; an --index file already records the layer npid embed computed")
            }
            guard layer == .embedding || options.has("--recompute") else {
                throw UsageError("--layer \(layer.rawValue) needs --recompute, because the memory bank stores only the embedding")
            }
        }
        let queryPaths = options.positional
        guard !queryPaths.isEmpty else {
            throw UsageError("npid search needs at least one QUERY_IMAGE file after the options; run npid search --help for an example")
        }
        let top = try options.int("--top") ?? 10
        guard top >= 1 else { throw UsageError("--top must be at least 1, got \(top)") }
        let outputPath = options.string("--out")
        let runtime = try runtimeOptions(options)
        try requireFile(checkpointPath, flag: "--checkpoint")
        if let indexPath {
            try requireFile(indexPath, flag: "--index")
        }
        if let outputPath {
            let inputs = queryPaths + [checkpointPath] + (indexPath.map { [$0] } ?? [])
            try requirePictureOutput(outputPath, flag: "--out", inputs: inputs)
        }
        for path in queryPaths {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue else {
                throw UsageError("query image \(path) does not exist or is a folder; pass image files after the options")
            }
        }

        let model = try TrainedModel(checkpointPath: checkpointPath, runtime: runtime)
        let gallery: SearchGallery
        if let trainSplit {
            let source = dataRoot.map { "--data \($0)" } ?? "--train-dir \(trainSplit)"
            gallery = try .trainingSplit(at: trainSplit, source: source, model: model,
                                         recompute: options.has("--recompute"), layer: layer, policy: policy)
        } else {
            gallery = try .embeddings(at: indexPath!, model: model)
        }
        if let outputPath {
            try requireNotAmongImages(outputPath, flag: "--out", images: gallery.paths)
        }
        let queries = try queryPaths.map { path in
            do {
                return try ImageDecoder.decode(contentsOf: path)
            } catch let error as DataError {
                throw QueryImageError(path: path, cause: error)
            }
        }
        let queryFeatures = try gallery.queryFeatures(of: queries, model: model)

        // A query that is one of the searched images would be its own best match, so its
        // rows are left out. A query with nothing else to search gets no matches.
        let ownRows = gallery.rows(of: queryPaths)
        var answered: [Int] = []
        var notes: [String] = []
        for (query, own) in ownRows.enumerated() {
            if own.isEmpty {
                answered.append(query)
            } else if own.count < gallery.paths.count {
                notes.append("note: query \(queryPaths[query]) is one of the searched images; it is left out of its own matches")
                answered.append(query)
            } else {
                notes.append("note: query \(queryPaths[query]) is the only image of \(gallery.source), so it has no matches")
            }
        }
        guard !answered.isEmpty else {
            throw UsageError("\(gallery.source) contains no image but the queries themselves; search a larger folder")
        }
        notes.forEach(Console.log)
        if answered.contains(where: { top > gallery.paths.count - ownRows[$0].count }) {
            Console.log("note: --top \(top) is more than the images there are to search (\(gallery.paths.count), less a query's own); such queries get fewer matches")
        }
        let largestOwn = answered.map { ownRows[$0].count }.max() ?? 0
        // Capped at the gallery first, because --top may be as large as Int.max.
        let searchCount = min(top, gallery.paths.count) + largestOwn
        let found = try nearestNeighbors(queries: queryFeatures, bank: gallery.features, count: searchCount)
        let neighbors = answered.map { query in
            Array(found[query].filter { !ownRows[query].contains($0.index) }.prefix(top))
        }
        var rows = RetrievalExamples.rows(queries: answered, queryLabels: nil, neighbors: neighbors,
                                          bankLabels: gallery.labels)
        // A query inside a class folder has a class, so its matches are framed green or red
        // in the picture as in npid neighbors. Other queries keep grey frames.
        for index in rows.indices {
            rows[index].queryLabel = folderClass(of: queryPaths[rows[index].query], names: gallery.classNames)
        }

        var sameClassCounts: [(same: Int, matches: Int)] = []
        var missing: [String] = []
        for row in rows {
            let path = queryPaths[row.query]
            Console.output(path)
            for (rank, (neighbor, label)) in zip(row.neighbors, row.neighborLabels).enumerated() {
                let match = gallery.paths[neighbor.index]
                Console.output(String(format: "%4d  %.4f  %@  %@", rank + 1, neighbor.similarity,
                                      gallery.displayName(label), match))
                if indexPath != nil && !FileManager.default.fileExists(atPath: match) {
                    missing.append(match)
                }
            }
            let counts = classCounts(row.neighborLabels, names: gallery.classNames)
            if !counts.isEmpty {
                Console.output("  classes: " + counts)
            }
            if let label = row.queryLabel {
                let same = row.neighborLabels.filter { $0 == label }.count
                sameClassCounts.append((same, row.neighbors.count))
                Console.output("  same class as the query's folder (\(gallery.classNames[label])): \(same) of \(row.neighbors.count)")
            }
        }
        if let first = missing.first, let indexPath {
            let missingImages = Set(missing).count == 1 ? "listed image \(first) no longer exists"
                : "\(Set(missing).count) listed images no longer exist, \(first) among them"
            Console.log("warning: \(missingImages); write --index \(indexPath) again with npid embed")
        }
        if sameClassCounts.count > 1 {
            Console.output(sameClassSummary(sameClassCounts))
        }
        if let outputPath {
            try PNGEncoder.write(RetrievalExamples.picture(rows, queryImage: { queries[$0.query] },
                                                           neighborImage: gallery.image),
                                 to: outputPath)
            Console.output("picture: \(outputPath)")
        }
    }

    /// Returns the training class named by the query image's folder, as in a test split laid
    /// out like the training split. Any other file gets nil.
    static func folderClass(of path: String, names: [String]) -> Int? {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().lastPathComponent
        return folder.isEmpty ? nil : names.firstIndex(of: folder)
    }

    /// Formats the mean count of matches that share the query folder's class, and how many
    /// queries have such matches as a majority of their own matches.
    static func sameClassSummary(_ counts: [(same: Int, matches: Int)]) -> String {
        let mean = Double(counts.map(\.same).reduce(0, +)) / Double(counts.count)
        let matches = counts.map(\.matches).max() ?? 0
        let majority = counts.filter { 2 * $0.same > $0.matches }.count
        return String(format: "%d queries in class folders: %.2f of %d matches share the class on average; %d (%.1f%%) have more than half",
                      counts.count, mean, matches, majority, 100 * Double(majority) / Double(counts.count))
    }

    /// Formats how many neighbours each class has, most first: "airplane 7, ship 2, bird 1".
    /// Neighbours without a class (name "") are left out.
    static func classCounts(_ labels: [Int], names: [String]) -> String {
        var counts: [Int: Int] = [:]
        for label in labels where !names[label].isEmpty {
            counts[label, default: 0] += 1
        }
        return counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .map { "\(names[$0.key]) \($0.value)" }
            .joined(separator: ", ")
    }
}
