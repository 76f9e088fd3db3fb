import Testing
@testable import NPID
import Torch

/// Running statistics of batch norm in training mode, checked against values computed here.
@Suite struct BatchNormTests {
    @Test func runningStatisticsFollowBatch() throws {
        let norm = try BatchNorm2d(1, placement: ParameterPlacement())
        // Two images of one 1 x 1 value each: mean 2, unbiased variance ((1-2)² + (3-2)²) / 1 = 2.
        let x = try Tensor([Float(1), 3], shape: [2, 1, 1, 1])

        _ = try norm(x, training: true)

        // PyTorch's update with momentum 0.1: 0.9 · old + 0.1 · batch.
        #expect(abs(try norm.runningMean.floats()[0] - 0.2) < 1e-6)
        #expect(abs(try norm.runningVar.floats()[0] - (0.9 + 0.1 * 2)) < 1e-6)
    }

    @Test func singleValueLeavesRunningStatistics() throws {
        let norm = try BatchNorm2d(2, placement: ParameterPlacement())
        let x = try Tensor([Float(5), -7], shape: [1, 2, 1, 1])

        let y = try norm(x, training: true).floats()

        // Normalised by its own statistics, one value becomes 0 (up to rounding of the mean,
        // divided by sqrt(epsilon)), so the output is the bias, 0.
        #expect(y.allSatisfy { abs($0) < 1e-3 }, "\(y)")
        #expect(try norm.runningMean.floats() == [0, 0])
        #expect(try norm.runningVar.floats() == [1, 1])
    }
}
