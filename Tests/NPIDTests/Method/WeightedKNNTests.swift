import Foundation
import Testing
@testable import NPID
import Torch

/// Weighted kNN on a hand-built 2-d bank: each query's k most similar rows vote for their
/// class with weight exp(s / σ). Expected votes come from a slow `Double` loop.
@Suite struct WeightedKNNTests {
    static let classCount = 7
    /// Angles of eight unit rows on the circle, uneven so that the similarities the tests rank do not tie.
    static let bankAngles = (0..<8).map { 0.3 + Double($0) * (2 * Double.pi / 8) + 0.05 * Double($0 * $0) }
    static let bankLabels = [0, 1, 2, 3, 4, 5, 6, 0]
    static let queryAngles = [0.35, 1.6, 4.4, 5.9, 2.9, 3.7]
    static let queryLabels = [0, 3, 1, 6, 2, 4]

    static func points(_ angles: [Double]) -> [Double] {
        angles.flatMap { [cos($0), sin($0)] }
    }

    static func bankTensor() throws -> Tensor {
        try MethodTensors.float(points(bankAngles), shape: [bankAngles.count, 2])
    }

    static func queryTensor() throws -> Tensor {
        try MethodTensors.float(points(queryAngles), shape: [queryAngles.count, 2])
    }

    static func labelTensor() throws -> Tensor {
        try MethodTensors.indices(bankLabels)
    }

    /// Returns the cosine similarities of one query with every bank row, most similar first.
    static func rankedNeighbors(queryAngle: Double) -> [(index: Int, similarity: Double)] {
        let query = points([queryAngle])
        let bank = points(bankAngles)
        return (0..<bankAngles.count)
            .map { (index: $0, similarity: MethodReference.dot(query, MethodReference.row(bank, $0, columns: 2))) }
            .sorted { $0.similarity > $1.similarity }
    }

    /// Computes Σ exp(s / σ) per class over the k most similar rows, k capped at N.
    static func referenceScores(queryAngle: Double, k: Int, sigma: Double) -> [Double] {
        var scores = [Double](repeating: 0, count: classCount)
        for neighbor in rankedNeighbors(queryAngle: queryAngle).prefix(k) {
            scores[bankLabels[neighbor.index]] += exp(neighbor.similarity / sigma)
        }
        return scores
    }

    /// Returns the classes ordered by score, highest first.
    static func referenceRanking(queryAngle: Double, k: Int, sigma: Double) -> [Int] {
        let scores = referenceScores(queryAngle: queryAngle, k: k, sigma: sigma)
        return (0..<classCount).sorted { scores[$0] > scores[$1] }
    }

    func expectScores(_ scores: Tensor, k: Int, sigma: Double) throws {
        #expect(scores.shape == [Self.queryAngles.count, Self.classCount])
        let values = try MethodTensors.values(scores)
        for (q, angle) in Self.queryAngles.enumerated() {
            let expected = Self.referenceScores(queryAngle: angle, k: k, sigma: sigma)
            for c in 0..<Self.classCount {
                let actual = values[q * Self.classCount + c]
                #expect(MethodReference.isClose(actual, expected[c], relative: 1e-5),
                        "query \(q) class \(c): score \(actual), expected \(expected[c])")
            }
        }
    }

    @Test func classScoresMatchSlowLoop() throws {
        let (k, sigma) = (3, 0.5)
        for angle in Self.queryAngles {
            let ranked = Self.rankedNeighbors(queryAngle: angle)
            try #require(ranked[k - 1].similarity - ranked[k].similarity > 1e-4, "test data has a tie at rank k")
        }
        let knn = WeightedKNN(neighborCount: k, temperature: sigma)

        let scores = try knn.classScores(queries: Self.queryTensor(), bank: Self.bankTensor(),
                                         bankLabels: Self.labelTensor(), classCount: Self.classCount)

        try expectScores(scores, k: k, sigma: sigma)
    }

    @Test func neighborCountCappedAtBankSize() throws {
        let sigma = 0.3
        let knn = WeightedKNN(neighborCount: 50, temperature: sigma)

        let scores = try knn.classScores(queries: Self.queryTensor(), bank: Self.bankTensor(),
                                         bankLabels: Self.labelTensor(), classCount: Self.classCount)

        try expectScores(scores, k: Self.bankAngles.count, sigma: sigma)
    }

    @Test func accuracyMatchesSlowLoop() throws {
        let (k, sigma) = (8, 0.2)
        var top1Hits = 0
        var top5Hits = 0
        for (angle, truth) in zip(Self.queryAngles, Self.queryLabels) {
            let ranking = Self.referenceRanking(queryAngle: angle, k: k, sigma: sigma)
            top1Hits += ranking[0] == truth ? 1 : 0
            top5Hits += ranking.prefix(5).contains(truth) ? 1 : 0
        }
        let queryCount = Double(Self.queryLabels.count)
        let expectedTop1 = 100 * Double(top1Hits) / queryCount
        let expectedTop5 = 100 * Double(top5Hits) / queryCount
        // The data is built so that both a top-1 miss and a top-5 miss occur.
        try #require(top1Hits > 0 && top1Hits < top5Hits && top5Hits < Self.queryLabels.count)
        let knn = WeightedKNN(neighborCount: k, temperature: sigma)

        let accuracy = try knn.evaluate(queries: Self.queryTensor(), queryLabels: Self.queryLabels,
                                        bank: Self.bankTensor(), bankLabels: Self.labelTensor(),
                                        classCount: Self.classCount)

        #expect(abs(accuracy.top1 - expectedTop1) < 1e-9, "top-1 \(accuracy.top1)%, expected \(expectedTop1)%")
        #expect(abs(accuracy.top5 - expectedTop5) < 1e-9, "top-5 \(accuracy.top5)%, expected \(expectedTop5)%")
        #expect(accuracy.queryCount == Self.queryLabels.count)
    }

    @Test func relativeScoresScaleByNearest() throws {
        let (k, sigma) = (4, 0.5)
        let knn = WeightedKNN(neighborCount: k, temperature: sigma)

        let relative = try MethodTensors.values(knn.classScores(queries: Self.queryTensor(), bank: Self.bankTensor(),
                                                                bankLabels: Self.labelTensor(), classCount: Self.classCount,
                                                                relativeToNearest: true))

        for (q, angle) in Self.queryAngles.enumerated() {
            let nearest = Self.rankedNeighbors(queryAngle: angle)[0].similarity
            let expected = Self.referenceScores(queryAngle: angle, k: k, sigma: sigma).map { $0 / exp(nearest / sigma) }
            for c in 0..<Self.classCount {
                #expect(MethodReference.isClose(relative[q * Self.classCount + c], expected[c], relative: 1e-5),
                        "query \(q) class \(c): \(relative[q * Self.classCount + c]), expected \(expected[c])")
            }
        }
    }

    @Test func tinyTemperatureVotesLikeNearestRow() throws {
        // exp(s / σ) overflows float32 here, so only the relative vote can rank the classes.
        let sigma = 1e-3
        for angle in Self.queryAngles {
            let ranked = Self.rankedNeighbors(queryAngle: angle)
            // A gap of 0.01 leaves the other k - 1 = 7 rows at most 7 · exp(-10) of the nearest row's weight.
            try #require(ranked[0].similarity - ranked[1].similarity > 0.01, "test data has a near tie at rank 1")
        }
        let nearestClasses = Self.queryAngles.map { Self.referenceRanking(queryAngle: $0, k: 1, sigma: 1)[0] }
        let expectedTop1 = 100 * Double(zip(nearestClasses, Self.queryLabels).filter { $0 == $1 }.count)
            / Double(Self.queryLabels.count)
        let knn = WeightedKNN(neighborCount: 8, temperature: sigma)

        let accuracy = try knn.evaluate(queries: Self.queryTensor(), queryLabels: Self.queryLabels,
                                        bank: Self.bankTensor(), bankLabels: Self.labelTensor(),
                                        classCount: Self.classCount)

        #expect(abs(accuracy.top1 - expectedTop1) < 1e-9, "top-1 \(accuracy.top1)%, expected \(expectedTop1)%")
        for (truth, predicted) in zip(Self.queryLabels, nearestClasses) {
            let row = accuracy.confusionMatrix[truth]
            #expect(row[predicted] >= 1, "class \(truth): confusion row \(row), nearest row's class \(predicted)")
        }
    }

    @Test func perClassAccuracyMatchesSlowLoop() throws {
        let (k, sigma) = (3, 0.2)
        // Two queries of class 0 (one near a class-0 row, one near the class-4 row), one of
        // class 3, and none of the other classes.
        let angles = [0.3, 4.3, 2.8]
        let labels = [0, 0, 3]
        var hits = [Int](repeating: 0, count: Self.classCount)
        var totals = [Int](repeating: 0, count: Self.classCount)
        for (angle, truth) in zip(angles, labels) {
            totals[truth] += 1
            if Self.referenceRanking(queryAngle: angle, k: k, sigma: sigma)[0] == truth {
                hits[truth] += 1
            }
        }
        let expected: [Double?] = (0..<Self.classCount).map {
            totals[$0] == 0 ? nil : 100 * Double(hits[$0]) / Double(totals[$0])
        }
        try #require(expected[0] == 50, "test data should give class 0 one hit and one miss")
        let knn = WeightedKNN(neighborCount: k, temperature: sigma)

        let accuracy = try knn.evaluate(queries: MethodTensors.float(Self.points(angles), shape: [3, 2]),
                                        queryLabels: labels, bank: Self.bankTensor(),
                                        bankLabels: Self.labelTensor(), classCount: Self.classCount)

        #expect(accuracy.perClassTop1.count == Self.classCount)
        for c in 0..<Self.classCount {
            #expect(accuracy.perClassTop1[c] == expected[c], "class \(c): \(String(describing: accuracy.perClassTop1[c]))")
        }
    }

    @Test func chunkSizeDoesNotChangeResult() throws {
        let sigma = 0.2
        let single = WeightedKNN(neighborCount: 4, temperature: sigma, chunkSize: 1)
        let whole = WeightedKNN(neighborCount: 4, temperature: sigma, chunkSize: 1000)
        let uneven = WeightedKNN(neighborCount: 4, temperature: sigma, chunkSize: 4)

        let results = try [single, whole, uneven].map {
            try $0.evaluate(queries: Self.queryTensor(), queryLabels: Self.queryLabels, bank: Self.bankTensor(),
                            bankLabels: Self.labelTensor(), classCount: Self.classCount)
        }

        #expect(results[0] == results[1])
        #expect(results[2] == results[1])
    }

    @Test func nearestNeighborsMatchSlowLoop() throws {
        let count = 3
        let neighbors = try nearestNeighbors(queries: Self.queryTensor(), bank: Self.bankTensor(), count: count)

        #expect(neighbors.count == Self.queryAngles.count)
        for (q, angle) in Self.queryAngles.enumerated() {
            let expected = Self.rankedNeighbors(queryAngle: angle).prefix(count)
            #expect(neighbors[q].map(\.index) == expected.map(\.index), "query \(q)")
            for (actual, reference) in zip(neighbors[q], expected) {
                #expect(abs(Double(actual.similarity) - reference.similarity) <= 1e-6,
                        "query \(q) row \(reference.index): similarity \(actual.similarity), expected \(reference.similarity)")
            }
        }
    }

    @Test func nearestNeighborsCappedAtBankSize() throws {
        let neighbors = try nearestNeighbors(queries: Self.queryTensor(), bank: Self.bankTensor(), count: 100)

        for (q, angle) in Self.queryAngles.enumerated() {
            #expect(neighbors[q].map(\.index) == Self.rankedNeighbors(queryAngle: angle).map(\.index), "query \(q)")
        }
    }
}
