import Foundation
import Testing
@testable import NPID

/// Choosing retrieval rows: queries over the classes, random queries, failures and
/// successes, and the picture drawn from them.
@Suite struct RetrievalExamplesTests {
    /// Builds a row whose neighbours have `neighborLabels`, with similarities falling from `first` in steps of 0.01.
    static func row(query: Int, label: Int?, neighborLabels: [Int], first: Float = 0.9) -> RetrievalRow {
        let neighbors = neighborLabels.indices.map { (index: $0, similarity: first - Float($0) * 0.01) }
        return RetrievalRow(query: query, queryLabel: label, neighbors: neighbors, neighborLabels: neighborLabels)
    }

    @Test func cyclingTakesEachClassInTurn() {
        let labels = [0, 0, 1, 2, 2, 2, 1]

        #expect(RetrievalExamples.indicesCyclingClasses(labels: labels, classCount: 3, count: 5) == [0, 2, 3, 1, 6])
        #expect(RetrievalExamples.indicesCyclingClasses(labels: labels, classCount: 3, count: 100) == [0, 2, 3, 1, 6, 4, 5])
    }

    @Test func randomIndicesAreDistinctSortedAndSeeded() {
        let first = RetrievalExamples.randomIndices(count: 6, below: 40, seed: 7)
        let again = RetrievalExamples.randomIndices(count: 6, below: 40, seed: 7)
        let other = RetrievalExamples.randomIndices(count: 6, below: 40, seed: 8)

        #expect(first.count == 6)
        #expect(Set(first).count == 6)
        #expect(first == first.sorted())
        #expect(first.allSatisfy { (0..<40).contains($0) })
        #expect(again == first)
        #expect(other != first)
        #expect(RetrievalExamples.randomIndices(count: 9, below: 5, seed: 1) == [0, 1, 2, 3, 4])
    }

    @Test func failuresNeedAMajorityOfOtherClasses() {
        let rows = [
            Self.row(query: 0, label: 1, neighborLabels: [1, 1, 0, 0]),          // 2 of 4 other: a tie, not a failure
            Self.row(query: 1, label: 1, neighborLabels: [0, 0, 2, 1]),          // 3 other
            Self.row(query: 2, label: 0, neighborLabels: [1, 1, 1, 1], first: 0.5),  // 4 other, less confident
            Self.row(query: 3, label: 2, neighborLabels: [0, 1, 0, 1], first: 0.8),  // 4 other, more confident
            Self.row(query: 4, label: nil, neighborLabels: [0, 1, 0, 1]),        // no class: never a failure
        ]

        let failures = RetrievalExamples.failures(rows, limit: 10)

        #expect(failures.map(\.query) == [3, 2, 1])
        #expect(RetrievalExamples.failures(rows, limit: 2).map(\.query) == [3, 2])
    }

    @Test func successesNeedAMajorityOfTheClass() {
        let rows = [
            Self.row(query: 0, label: 1, neighborLabels: [1, 1, 0, 0]),          // a tie: neither
            Self.row(query: 1, label: 1, neighborLabels: [1, 1, 1, 0]),
            Self.row(query: 2, label: 2, neighborLabels: [2, 2, 2, 2], first: 0.7),
            Self.row(query: 3, label: 0, neighborLabels: [0, 0, 0, 0], first: 0.8),
        ]

        #expect(RetrievalExamples.successes(rows, limit: 10).map(\.query) == [3, 2, 1])
    }

    @Test func pictureFramesByClass() throws {
        let red = RGBImage(width: 4, height: 4, pixels: [UInt8](repeating: 200, count: 48))
        let bank = ImageStore(images: [red, red, red], labels: [0, 1, 1], classNames: ["a", "b"])
        let labelled = Self.row(query: 0, label: 1, neighborLabels: [1, 0])
        let unlabelled = RetrievalRow(query: 0, queryLabel: nil, neighbors: [(index: 2, similarity: 0.5)], neighborLabels: [1])
        let grid = ImageGrid(tileSize: 10, padding: 4, queryGap: 6)

        let picture = try RetrievalExamples.picture([labelled, unlabelled], queryImage: { _ in red }, bank: bank, grid: grid)

        #expect(picture.width == grid.canvasSize(rowCount: 2, columnCount: 3).width)
        #expect(picture.height == grid.canvasSize(rowCount: 2, columnCount: 3).height)
        // A 2-pixel frame fits in the 4-pixel padding, so the pixel just left of a tile is its frame.
        func frame(row: Int, column: Int) -> [UInt8] {
            let origin = grid.tileOrigin(row: row, column: column)
            let index = ((origin.y + 5) * picture.width + origin.x - 1) * 3
            return Array(picture.pixels[index..<(index + 3)])
        }
        #expect(frame(row: 0, column: 0) == [30, 90, 230])
        #expect(frame(row: 0, column: 1) == [20, 170, 60])
        #expect(frame(row: 0, column: 2) == [220, 30, 30])
        #expect(frame(row: 1, column: 0) == [30, 90, 230])
        #expect(frame(row: 1, column: 1) == [150, 150, 150])
    }
}
