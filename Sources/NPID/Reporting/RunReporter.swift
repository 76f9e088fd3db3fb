import Foundation

/// Keeps a training run's report files current: at each epoch end it adds the epoch's
/// scalars to the TensorBoard event files, saves the kNN evaluation and retrieval pictures,
/// and rewrites report.html.
///
/// Call `epochFinished(_:)` from the `.epochFinished` event of `Trainer.run`, when the
/// trainer's checkpoint, metrics and `lastAccuracy` are already up to date.
public final class RunReporter {
    public let trainer: Trainer
    public var snapshot = ReportSnapshot()
    private var tensorBoard: TensorBoardWriter?

    public init(trainer: Trainer) {
        self.trainer = trainer
    }

    public var reportPath: String { trainer.runDirectory + "/" + RunFiles.report }

    /// Updates every report file. A failed step does not stop the others or training,
    /// so the errors come back instead of being thrown, for the caller to log.
    public func epochFinished(_ metrics: EpochMetrics) -> [Error] {
        var errors: [Error] = []
        do {
            try addToTensorBoard(metrics)
        } catch {
            errors.append(error)
        }
        do {
            try writeSnapshot(epoch: metrics.epoch)
        } catch {
            errors.append(error)
        }
        do {
            try RunReport.load(runDirectory: trainer.runDirectory).write(to: reportPath)
        } catch {
            errors.append(error)
        }
        return errors
    }

    /// Appends the epoch to this process's event file. The first epoch of a process rewrites
    /// the folder from metrics.jsonl instead, because a run resumed from an older checkpoint
    /// has cut that log back, and the old event files still contain the epochs it dropped.
    private func addToTensorBoard(_ metrics: EpochMetrics) throws {
        if let tensorBoard {
            try tensorBoard.add(metrics)
            return
        }
        let log = MetricsLog(path: trainer.runDirectory + "/" + RunFiles.metrics)
        let history = try log.read().filter { $0.epoch < metrics.epoch } + [metrics]
        tensorBoard = try TensorBoardWriter(directory: trainer.runDirectory + "/" + RunFiles.tensorBoard,
                                            replacingWith: history)
    }

    private func writeSnapshot(epoch: Int) throws {
        guard let accuracy = trainer.lastAccuracy else { return }
        let configuration = trainer.configuration
        let network = trainer.network
        let runtime = trainer.runtime
        try snapshot.write(accuracy: accuracy, epoch: epoch, features: "memory bank",
                           neighborCount: configuration.neighborCount, temperature: configuration.temperature,
                           data: trainer.data, bank: trainer.memoryBank.features,
                           queryFeatures: { store in
                               try plainFeatures(model: network, store: store, imageSize: configuration.imageSize,
                                                 runtime: runtime)
                           },
                           runDirectory: trainer.runDirectory)
    }
}
