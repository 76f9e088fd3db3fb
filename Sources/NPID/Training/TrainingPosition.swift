/// The point a run has reached: epochs finished, and steps taken in the epoch after them.
public struct TrainingPosition: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var epochsDone: Int
    public var stepInEpoch: Int

    public init(epochsDone: Int, stepInEpoch: Int) {
        self.epochsDone = epochsDone
        self.stepInEpoch = stepInEpoch
    }

    public static func < (left: TrainingPosition, right: TrainingPosition) -> Bool {
        (left.epochsDone, left.stepInEpoch) < (right.epochsDone, right.stepInEpoch)
    }

    /// "after epoch 3" or "in epoch 4 after step 17", with epochs counted from 1.
    public var description: String {
        stepInEpoch == 0 ? "after epoch \(epochsDone)" : "in epoch \(epochsDone + 1) after step \(stepInEpoch)"
    }
}

/// A run that stopped early because its caller asked it to (for example on SIGINT), after
/// saving a checkpoint from which `--resume` continues the same run.
public struct TrainingInterrupted: Error, CustomStringConvertible, Sendable {
    /// The point whose state the checkpoint contains.
    public let position: TrainingPosition
    public let epochs: Int
    public let stepsPerEpoch: Int
    /// The run's latest checkpoint, which contains the state at `position`.
    public let checkpointPath: String

    public var description: String {
        var place = "after epoch \(position.epochsDone) of \(epochs)"
        if position.stepInEpoch > 0 {
            place = "in epoch \(position.epochsDone + 1) of \(epochs) after step \(position.stepInEpoch) of \(stepsPerEpoch)"
        } else if position.epochsDone >= epochs {
            place = "after the last epoch, before the final evaluation"
        }
        return "training stopped \(place); \(checkpointPath) contains that state"
    }
}
