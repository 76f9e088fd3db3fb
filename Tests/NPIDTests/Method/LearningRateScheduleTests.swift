import Foundation
import Testing
@testable import NPID

/// Learning-rate schedules over a 200-epoch run with epochs counted from 0.
@Suite struct LearningRateScheduleTests {
    static let base = 0.03
    static let epochs = 200

    @Test func stepKeepsBaseBeforeEpoch120() {
        for epoch in 0..<120 {
            let rate = LearningRateSchedule.step.learningRate(base: Self.base, epoch: epoch, epochs: Self.epochs)
            #expect(rate == Self.base, "epoch \(epoch): \(rate)")
        }
    }

    @Test func stepDividesByTenAtEpoch120() {
        for epoch in 120..<160 {
            let rate = LearningRateSchedule.step.learningRate(base: Self.base, epoch: epoch, epochs: Self.epochs)
            #expect(abs(rate - Self.base * 0.1) <= 1e-15, "epoch \(epoch): \(rate)")
        }
    }

    @Test func stepDividesByHundredAtEpoch160() {
        for epoch in 160..<200 {
            let rate = LearningRateSchedule.step.learningRate(base: Self.base, epoch: epoch, epochs: Self.epochs)
            #expect(abs(rate - Self.base * 0.01) <= 1e-15, "epoch \(epoch): \(rate)")
        }
    }

    @Test func cosineStartsAtBase() {
        let rate = LearningRateSchedule.cosine.learningRate(base: Self.base, epoch: 0, epochs: Self.epochs)
        #expect(rate == Self.base)
    }

    @Test func cosineIsHalfBaseAtMidpoint() {
        let rate = LearningRateSchedule.cosine.learningRate(base: Self.base, epoch: Self.epochs / 2, epochs: Self.epochs)
        #expect(abs(rate - Self.base / 2) <= 1e-15)
    }

    @Test func cosineReachesZeroAfterLastEpoch() {
        let rate = LearningRateSchedule.cosine.learningRate(base: Self.base, epoch: Self.epochs, epochs: Self.epochs)
        #expect(abs(rate) <= 1e-15)
    }

    @Test func cosineLastEpochIsSmallButPositive() {
        // Half a cosine over 200 epochs: at epoch 199 the rate is base · (1 − cos(π/200)) / 2.
        let rate = LearningRateSchedule.cosine.learningRate(base: Self.base, epoch: Self.epochs - 1, epochs: Self.epochs)
        let expected = Self.base * (1 - cos(Double.pi / Double(Self.epochs))) / 2
        #expect(abs(rate - expected) <= 1e-15, "rate \(rate), expected \(expected)")
    }

    @Test func cosineDecreasesEveryEpoch() {
        let rates = (0...Self.epochs).map {
            LearningRateSchedule.cosine.learningRate(base: Self.base, epoch: $0, epochs: Self.epochs)
        }
        for epoch in 1...Self.epochs {
            #expect(rates[epoch] < rates[epoch - 1], "epoch \(epoch) is not below epoch \(epoch - 1)")
        }
    }
}
