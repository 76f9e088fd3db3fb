import Foundation

/// The learning rate's change over epochs.
public enum LearningRateSchedule: String, Codable, Sendable, CaseIterable {
    /// The original release's CIFAR schedule: base rate until epoch 120, then ×0.1 at
    /// epochs 120 and 160, computed as lr · 0.1^⌊(epoch − 80) / 40⌋ from epoch 80 on.
    case step
    /// Half a cosine from the base rate at epoch 0 to zero after the last epoch.
    case cosine

    /// Returns the rate for `epoch` (counted from 0) of `epochs`.
    public func learningRate(base: Double, epoch: Int, epochs: Int) -> Double {
        switch self {
        case .step:
            guard epoch >= 80 else { return base }
            return base * pow(0.1, Double((epoch - 80) / 40))
        case .cosine:
            return base * 0.5 * (1 + cos(Double.pi * Double(epoch) / Double(max(epochs, 1))))
        }
    }
}
