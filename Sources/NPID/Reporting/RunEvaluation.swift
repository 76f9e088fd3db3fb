import Foundation
import Torch

/// Names of the files in a run folder besides the checkpoint.
public enum RunFiles {
    public static let configuration = "config.json"
    public static let metrics = "metrics.jsonl"
    public static let report = "report.html"
    /// The latest kNN evaluation, as `RunEvaluation` JSON.
    public static let evaluation = "evaluation.json"
    public static let retrievalSuccesses = "retrieval-successes.png"
    public static let retrievalFailures = "retrieval-failures.png"
    /// Folder of TensorBoard event files.
    public static let tensorBoard = "tensorboard"
}

/// The kNN evaluation and retrieval sample that the HTML report shows, saved as
/// `evaluation.json` so that `npid report` can rebuild the page without the images.
public struct RunEvaluation: Codable, Sendable, Equatable {
    /// Epochs trained when the evaluation ran.
    public var epoch: Int
    /// The training features the test images were compared with: "memory bank" or
    /// "recomputed features".
    public var features: String
    /// k of the vote, already capped at the number of training images.
    public var neighborCount: Int
    /// σ of the vote's weights exp(s / σ).
    public var temperature: Double
    public var classNames: [String]
    /// Top-1 and top-5 accuracy on the test split, in percent.
    public var top1: Double
    public var top5: Double
    /// Top-1 accuracy per class in percent, nil for a class without test images.
    public var perClassTop1: [Double?]
    /// Test image counts: row = true class, column = predicted class.
    public var confusionMatrix: [[Int]]
    public var queryCount: Int
    /// Test images whose neighbours the retrieval pictures were chosen from.
    public var retrievalQueryCount: Int
    /// Neighbours per retrieval row.
    public var retrievalNeighborCount: Int
    /// Share of those neighbours that belong to their query's class, in percent.
    public var retrievalSameClassPercent: Double

    enum CodingKeys: String, CodingKey {
        case epoch, features, temperature, top1, top5
        case neighborCount = "neighbor_count"
        case classNames = "class_names"
        case perClassTop1 = "per_class_top1"
        case confusionMatrix = "confusion_matrix"
        case queryCount = "query_count"
        case retrievalQueryCount = "retrieval_query_count"
        case retrievalNeighborCount = "retrieval_neighbor_count"
        case retrievalSameClassPercent = "retrieval_same_class_percent"
    }

    /// Reads `evaluation.json`.
    public static func read(contentsOf path: String) throws -> RunEvaluation {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        do {
            return try JSONDecoder().decode(RunEvaluation.self, from: data)
        } catch let error as DecodingError {
            // npid train writes the file after every epoch, and npid report --data writes it anew.
            let runDirectory = (path as NSString).deletingLastPathComponent
            throw ReportInputError(path: path, problem: "is not an evaluation written by npid (\(describe(error)))",
                                   advice: "delete it, or run npid report \(runDirectory) --data ROOT to evaluate the checkpoint again")
        }
    }

    /// Describes what is wrong in the JSON, naming the key, in place of Foundation's generic message.
    static func describe(_ error: DecodingError) -> String {
        func keyPath(_ keys: [any CodingKey]) -> String {
            var text = ""
            for key in keys {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += (text.isEmpty ? "" : ".") + key.stringValue
                }
            }
            return text
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing key \"\(keyPath(context.codingPath + [key]))\""
        case .valueNotFound(_, let context):
            return "key \"\(keyPath(context.codingPath))\" is null"
        case .typeMismatch(_, let context) where context.codingPath.isEmpty:
            return "not a JSON object"
        case .typeMismatch(_, let context):
            return "key \"\(keyPath(context.codingPath))\" has the wrong type"
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            return "not valid JSON"
        case .dataCorrupted(let context):
            return "key \"\(keyPath(context.codingPath))\" has an invalid value"
        @unknown default:
            return "\(error)"
        }
    }

    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write([UInt8](try encoder.encode(self)) + [10], to: path)
    }
}

/// A file in the run folder that is in the way of the report, either an input that cannot be
/// read or a folder where the report is written.
public struct ReportInputError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let problem: String
    /// The next step for the user, such as deleting the file.
    public let advice: String

    public init(path: String, problem: String, advice: String = "delete it or rerun the step that wrote it") {
        self.path = path
        self.problem = problem
        self.advice = advice
    }

    public var description: String { "\(path) \(problem); \(advice)" }
}

/// Computes and saves the evaluation part of a run report: `evaluation.json` and the two
/// retrieval pictures (queries whose neighbours mostly share their class, and those whose
/// neighbours mostly do not).
public struct ReportSnapshot {
    /// Test images searched for retrieval examples, taken evenly over the classes.
    public var retrievalQueries = 500
    /// Neighbours per retrieval row.
    public var retrievalNeighbors = 8
    /// Rows per retrieval picture.
    public var pictureRows = 6

    public init() {}

    /// Writes the snapshot into `runDirectory`.
    ///
    /// - Parameters:
    ///   - accuracy: the kNN result on the whole test split (with its confusion matrix).
    ///   - bank: training features [N, D] in dataset order, the ones `accuracy` used.
    ///   - queryFeatures: computes the features [Q, D] of a store of test images.
    public func write(accuracy: KNNAccuracy, epoch: Int, features: String, neighborCount: Int, temperature: Double,
                      data: TrainingData, bank: Tensor, queryFeatures: (ImageStore) throws -> Tensor,
                      runDirectory: String) throws {
        let queries = RetrievalExamples.indicesCyclingClasses(labels: data.test.labels, classCount: data.classNames.count,
                                                              count: retrievalQueries)
        let store = ImageStore(images: try queries.map { try data.test[$0] }, labels: queries.map { data.test.labels[$0] },
                               classNames: data.classNames)
        let neighbors = try nearestNeighbors(queries: queryFeatures(store), bank: bank, count: retrievalNeighbors)
        let rows = RetrievalExamples.rows(queries: queries, queryLabels: data.test.labels, neighbors: neighbors,
                                          bankLabels: data.train.labels)
        let sameClass = rows.reduce(0) { $0 + $1.sameClassCount }
        let neighborTotal = rows.reduce(0) { $0 + $1.neighbors.count }

        let pictures = [
            (RunFiles.retrievalSuccesses, RetrievalExamples.successes(rows, limit: pictureRows)),
            (RunFiles.retrievalFailures, RetrievalExamples.failures(rows, limit: pictureRows)),
        ]
        for (name, chosen) in pictures {
            let path = runDirectory + "/" + name
            if chosen.isEmpty {
                // A stale picture from an earlier epoch would contradict this evaluation.
                try? FileManager.default.removeItem(atPath: path)
            } else {
                try PNGEncoder.write(RetrievalExamples.picture(chosen, queryImage: { try data.test[$0.query] }, bank: data.train),
                                     to: path)
            }
        }

        let evaluation = RunEvaluation(
            epoch: epoch, features: features, neighborCount: min(neighborCount, data.train.count),
            temperature: temperature, classNames: data.classNames, top1: accuracy.top1, top5: accuracy.top5,
            perClassTop1: accuracy.perClassTop1, confusionMatrix: accuracy.confusionMatrix,
            queryCount: accuracy.queryCount, retrievalQueryCount: queries.count,
            retrievalNeighborCount: min(retrievalNeighbors, data.train.count),
            retrievalSameClassPercent: 100 * Double(sameClass) / Double(max(neighborTotal, 1)))
        try evaluation.write(to: runDirectory + "/" + RunFiles.evaluation)
    }
}
