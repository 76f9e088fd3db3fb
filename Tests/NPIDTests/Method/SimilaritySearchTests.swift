import Foundation
import Testing
@testable import NPID
import Torch

/// Blocked top-k search and the kNN built on it, against slow `Double` loops: every block
/// size must give the exact neighbours of one full similarity matrix.
@Suite struct SimilaritySearchTests {
    static let dimension = 5
    static let bankCount = 23
    static let queryCount = 7

    /// Irregular unit rows; the phases keep every pair of similarities apart.
    static let bank = MethodReference.unitRows(
        MethodReference.waves(count: bankCount * dimension, phase: 0.4, step: 1.37), columns: dimension)
    static let queries = MethodReference.unitRows(
        MethodReference.waves(count: queryCount * dimension, phase: 2.1, step: 0.91), columns: dimension)

    /// Returns every bank row of one query by similarity, highest first.
    static func ranked(query: Int) -> [(index: Int, similarity: Double)] {
        let row = MethodReference.row(queries, query, columns: dimension)
        return (0..<bankCount)
            .map { (index: $0, similarity: MethodReference.dot(row, MethodReference.row(bank, $0, columns: dimension))) }
            .sorted { $0.similarity > $1.similarity }
    }

    static func tensors() throws -> (queries: Tensor, bank: Tensor) {
        (try MethodTensors.float(queries, shape: [queryCount, dimension]),
         try MethodTensors.float(bank, shape: [bankCount, dimension]))
    }

    @Test(arguments: [(query: 1, bank: 1), (query: 2, bank: 5), (query: 3, bank: 7), (query: 7, bank: 23),
                      (query: 100, bank: 100), (query: 4, bank: 22)])
    func blockedTopKMatchesSlowLoop(blocks: (query: Int, bank: Int)) throws {
        let k = 6
        for q in 0..<Self.queryCount {
            let ranks = Self.ranked(query: q)
            try #require(ranks[k - 1].similarity - ranks[k].similarity > 1e-5, "test data has a tie at rank k")
        }
        let (queries, bank) = try Self.tensors()
        let search = SimilaritySearch(queryBlockSize: blocks.query, bankBlockSize: blocks.bank)

        let (values, indices) = try search.topK(queries: queries, bank: bank, k: k)

        #expect(values.shape == [Self.queryCount, k])
        #expect(indices.shape == [Self.queryCount, k])
        let similarities = try MethodTensors.values(values)
        let rows = try indices.toArray(of: Int64.self)
        for q in 0..<Self.queryCount {
            let expected = Self.ranked(query: q).prefix(k)
            #expect(rows[(q * k)..<((q + 1) * k)].map(Int.init) == expected.map(\.index), "query \(q)")
            for (j, reference) in expected.enumerated() {
                #expect(abs(similarities[q * k + j] - reference.similarity) < 1e-6, "query \(q) rank \(j)")
            }
        }
    }

    @Test func topKCappedAtBankSize() throws {
        let (queries, bank) = try Self.tensors()

        let (values, indices) = try SimilaritySearch(queryBlockSize: 3, bankBlockSize: 4).topK(queries: queries, bank: bank, k: 50)

        #expect(values.shape == [Self.queryCount, Self.bankCount])
        let rows = try indices.toArray(of: Int64.self)
        for q in 0..<Self.queryCount {
            let slice = rows[(q * Self.bankCount)..<((q + 1) * Self.bankCount)].map(Int.init)
            #expect(slice == Self.ranked(query: q).map(\.index), "query \(q)")
        }
    }

    @Test func knnWithSmallBankBlocksMatchesSlowLoop() throws {
        let classCount = 4
        let bankLabels = (0..<Self.bankCount).map { ($0 * 7) % classCount }
        let queryLabels = [0, 1, 2, 3, 0, 1, 2]
        let (k, sigma) = (5, 0.3)
        var expectedTop1 = 0
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classCount), count: classCount)
        for q in 0..<Self.queryCount {
            var scores = [Double](repeating: 0, count: classCount)
            for neighbor in Self.ranked(query: q).prefix(k) {
                scores[bankLabels[neighbor.index]] += exp(neighbor.similarity / sigma)
            }
            let predicted = (0..<classCount).max { scores[$0] < scores[$1] }!
            confusion[queryLabels[q]][predicted] += 1
            expectedTop1 += predicted == queryLabels[q] ? 1 : 0
        }
        let (queries, bank) = try Self.tensors()
        let knn = WeightedKNN(neighborCount: k, temperature: sigma, chunkSize: 2, bankChunkSize: 3)

        let accuracy = try knn.evaluate(queries: queries, queryLabels: queryLabels, bank: bank,
                                        bankLabels: MethodTensors.indices(bankLabels), classCount: classCount)

        #expect(abs(accuracy.top1 - 100 * Double(expectedTop1) / Double(Self.queryCount)) < 1e-9)
        #expect(accuracy.confusionMatrix == confusion)
    }

    @Test func confusionRowsSumToClassCounts() throws {
        let (queries, bank) = try Self.tensors()
        let queryLabels = [2, 2, 0, 1, 2, 0, 1]
        let bankLabels = (0..<Self.bankCount).map { $0 % 3 }
        let knn = WeightedKNN(neighborCount: 4, temperature: 0.1)

        let accuracy = try knn.evaluate(queries: queries, queryLabels: queryLabels, bank: bank,
                                        bankLabels: MethodTensors.indices(bankLabels), classCount: 3)

        #expect(accuracy.confusionMatrix.map { $0.reduce(0, +) } == [2, 2, 3])
        let diagonal = (0..<3).map { accuracy.confusionMatrix[$0][$0] }
        #expect(abs(accuracy.top1 - 100 * Double(diagonal.reduce(0, +)) / 7) < 1e-9)
        for c in 0..<3 {
            let expected = 100 * Double(diagonal[c]) / Double(queryLabels.filter { $0 == c }.count)
            #expect(accuracy.perClassTop1[c] == expected, "class \(c)")
        }
    }
}
