import Foundation
import Testing
@testable import NPID

/// `RunEvaluation.read` on damaged evaluation.json files. The message names the file, the key
/// at fault and what to do.
@Suite struct RunEvaluationReadTests {
    static let evaluation = RunEvaluation(
        epoch: 2, features: "memory bank", neighborCount: 5, temperature: 0.07, classNames: ["cat", "dog"],
        top1: 50, top5: 100, perClassTop1: [50, nil], confusionMatrix: [[1, 1], [0, 0]], queryCount: 2,
        retrievalQueryCount: 2, retrievalNeighborCount: 3, retrievalSameClassPercent: 50)

    /// Encodes `evaluation`, lets `change` edit the top-level object, and returns the JSON text.
    static func editedJSON(_ change: (inout [String: Any]) -> Void) throws -> String {
        var object = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(evaluation)) as? [String: Any])
        change(&object)
        return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    /// Writes `text` as evaluation.json, reads it, and returns the problem that the error names.
    static func problem(reading text: String) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("npid-evaluation-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/" + RunFiles.evaluation
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        do {
            _ = try RunEvaluation.read(contentsOf: path)
            return "no error"
        } catch let error as ReportInputError {
            #expect(error.path == path)
            #expect(error.advice == "delete it, or run npid report \(folder) --data ROOT to evaluate the checkpoint again")
            return error.problem
        }
    }

    @Test func writtenFileReadsBack() throws {
        let text = try Self.editedJSON { _ in }

        #expect(try Self.problem(reading: text) == "no error")
    }

    @Test func emptyObjectNamesFirstMissingKey() throws {
        #expect(try Self.problem(reading: "{}") == #"is not an evaluation written by npid (missing key "epoch")"#)
    }

    @Test func eachDamageIsNamed() throws {
        let cases: [(text: String, problem: String)] = [
            ("[1", "not valid JSON"),
            ("[1]", "not a JSON object"),
            (try Self.editedJSON { $0.removeValue(forKey: "query_count") }, #"missing key "query_count""#),
            (try Self.editedJSON { $0["epoch"] = "two" }, #"key "epoch" has the wrong type"#),
            (try Self.editedJSON { $0["top1"] = NSNull() }, #"key "top1" is null"#),
            (try Self.editedJSON { $0["confusion_matrix"] = [[1, 1], [0, "x"]] }, #"key "confusion_matrix[1][1]" has the wrong type"#),
        ]
        for (text, problem) in cases {
            #expect(try Self.problem(reading: text) == "is not an evaluation written by npid (\(problem))", "file: \(text)")
        }
    }
}
