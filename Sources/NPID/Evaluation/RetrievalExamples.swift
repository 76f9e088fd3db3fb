/// One query image and its nearest training images, for retrieval pictures and the
/// "what do the features confuse" view.
public struct RetrievalRow: Sendable {
    /// Index of the query in its own image store.
    public var query: Int
    /// The query's class, nil for an image from outside the data set.
    public var queryLabel: Int?
    /// Training rows, most similar first, with their cosine similarity.
    public var neighbors: [(index: Int, similarity: Float)]
    /// Class of each neighbour, in the same order.
    public var neighborLabels: [Int]

    public init(query: Int, queryLabel: Int?, neighbors: [(index: Int, similarity: Float)], neighborLabels: [Int]) {
        precondition(neighbors.count == neighborLabels.count, "RetrievalRow needs one label per neighbour")
        self.query = query
        self.queryLabel = queryLabel
        self.neighbors = neighbors
        self.neighborLabels = neighborLabels
    }

    /// Neighbours of the query's class (0 for an unlabelled query).
    public var sameClassCount: Int {
        guard let queryLabel else { return 0 }
        return neighborLabels.filter { $0 == queryLabel }.count
    }

    /// Neighbours of other classes (all of them for an unlabelled query).
    public var otherClassCount: Int { neighbors.count - sameClassCount }

    public var meanSimilarity: Double {
        neighbors.isEmpty ? 0 : neighbors.reduce(0) { $0 + Double($1.similarity) } / Double(neighbors.count)
    }
}

/// Choosing which queries to show: evenly over the classes, the best retrievals and the
/// failures, where most neighbours belong to other classes (the view Wu et al. use to show
/// what instance-discrimination features confuse).
public enum RetrievalExamples {
    /// Returns `count` query indices that cycle through the classes: the first image of
    /// each class, then the second of each, and so on, in dataset order within a class.
    public static func indicesCyclingClasses(labels: [Int], classCount: Int, count: Int) -> [Int] {
        var byClass = [[Int]](repeating: [], count: classCount)
        for (index, label) in labels.enumerated() {
            byClass[label].append(index)
        }
        var result: [Int] = []
        var round = 0
        let rounds = byClass.map(\.count).max() ?? 0
        while result.count < count && round < rounds {
            for members in byClass where round < members.count && result.count < count {
                result.append(members[round])
            }
            round += 1
        }
        return result
    }

    /// Returns `count` distinct indices below `total` (all of them when `count >= total`),
    /// drawn uniformly by a partial Fisher-Yates shuffle seeded with `seed`, in ascending order.
    public static func randomIndices(count: Int, below total: Int, seed: UInt64) -> [Int] {
        var pool = Array(0..<total)
        var random = SampleRandom(seed: seed)
        let drawn = min(count, total)
        for position in 0..<drawn {
            pool.swapAt(position, position + random.nextInt(below: total - position))
        }
        return pool.prefix(drawn).sorted()
    }

    /// Pairs each query with its neighbours and their labels.
    ///
    /// - Parameters:
    ///   - queries: query indices, one per entry of `neighbors`.
    ///   - queryLabels: labels of the whole query store, indexed by query index; nil when unlabelled.
    ///   - neighbors: per query, bank rows most similar first.
    ///   - bankLabels: label of every bank row.
    public static func rows(queries: [Int], queryLabels: [Int]?, neighbors: [[(index: Int, similarity: Float)]],
                            bankLabels: [Int]) -> [RetrievalRow] {
        precondition(queries.count == neighbors.count, "one neighbour list per query")
        return zip(queries, neighbors).map { query, found in
            RetrievalRow(query: query, queryLabel: queryLabels?[query], neighbors: found,
                         neighborLabels: found.map { bankLabels[$0.index] })
        }
    }

    /// Rows where more than half of the neighbours belong to other classes: the most
    /// other-class neighbours first, then the most confident (highest first similarity),
    /// then query order. At most `limit` rows.
    public static func failures(_ rows: [RetrievalRow], limit: Int) -> [RetrievalRow] {
        let candidates = rows.enumerated().filter { $0.element.queryLabel != nil && 2 * $0.element.otherClassCount > $0.element.neighbors.count }
        let sorted = candidates.sorted { left, right in
            let (a, b) = (left.element, right.element)
            if a.otherClassCount != b.otherClassCount {
                return a.otherClassCount > b.otherClassCount
            }
            let (firstA, firstB) = (a.neighbors.first?.similarity ?? 0, b.neighbors.first?.similarity ?? 0)
            if firstA != firstB {
                return firstA > firstB
            }
            return left.offset < right.offset
        }
        return sorted.prefix(limit).map(\.element)
    }

    /// Rows where more than half of the neighbours share the query's class: the most
    /// same-class neighbours first, then the highest mean similarity, then query order.
    /// At most `limit` rows.
    public static func successes(_ rows: [RetrievalRow], limit: Int) -> [RetrievalRow] {
        let candidates = rows.enumerated().filter { $0.element.queryLabel != nil && 2 * $0.element.sameClassCount > $0.element.neighbors.count }
        let sorted = candidates.sorted { left, right in
            let (a, b) = (left.element, right.element)
            if a.sameClassCount != b.sameClassCount {
                return a.sameClassCount > b.sameClassCount
            }
            if a.meanSimilarity != b.meanSimilarity {
                return a.meanSimilarity > b.meanSimilarity
            }
            return left.offset < right.offset
        }
        return sorted.prefix(limit).map(\.element)
    }

    /// Draws one grid row per retrieval row: the query (blue frame), then its neighbours,
    /// framed green when they share the query's class, red when not, and grey when the
    /// query has no class.
    /// - Throws: a `DataError` when an image that is not cached no longer decodes.
    public static func picture(_ rows: [RetrievalRow], queryImage: (RetrievalRow) throws -> RGBImage,
                               bank: ImageStore, grid: ImageGrid = ImageGrid(queryGap: 8)) throws -> RGBImage {
        try picture(rows, queryImage: queryImage, neighborImage: { try bank[$0] }, grid: grid)
    }

    /// Draws the grid as above, with the image of bank row `i` from `neighborImage(i)`.
    public static func picture(_ rows: [RetrievalRow], queryImage: (RetrievalRow) throws -> RGBImage,
                               neighborImage: (Int) throws -> RGBImage,
                               grid: ImageGrid = ImageGrid(queryGap: 8)) throws -> RGBImage {
        let tiles = try rows.map { row in
            var tiles = [GridTile(image: try queryImage(row), border: .query)]
            for (neighbor, label) in zip(row.neighbors, row.neighborLabels) {
                let border: GridBorder
                if let queryLabel = row.queryLabel {
                    border = label == queryLabel ? .match : .mismatch
                } else {
                    border = .color(red: 150, green: 150, blue: 150)
                }
                tiles.append(GridTile(image: try neighborImage(neighbor.index), border: border))
            }
            return tiles
        }
        return grid.render(rows: tiles)
    }
}
