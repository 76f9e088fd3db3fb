import Foundation
import Testing
@testable import NPID
import Torch

/// Every loss, its gradient, the bank update and the kNN class scores against values that
/// PyTorch computed from the formulas: Fixtures/objective.safetensors, written by
/// scripts/make_fixtures.py from explicit inputs (noise rows included), all float64.
@Suite struct ObjectiveFixtureTests {
    static let fixturePath: String = {
        let methodFolder = URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent()
        return methodFolder.deletingLastPathComponent().appendingPathComponent("Fixtures/objective.safetensors").path
    }()

    /// The fixture file's tensors and settings.
    struct Fixture {
        let contents: SafetensorsContents

        init() throws {
            contents = try Safetensors.read(contentsOf: ObjectiveFixtureTests.fixturePath)
        }

        func tensor(_ name: String) throws -> Tensor {
            let entry = try #require(contents[name],
                                     "\(ObjectiveFixtureTests.fixturePath) has no tensor \(name); rerun scripts/make_fixtures.py")
            return try entry.tensor()
        }

        func values(_ name: String) throws -> [Double] {
            try MethodTensors.values(tensor(name))
        }

        func scalar(_ name: String) throws -> Double {
            try #require(try values(name).count == 1)
            return try values(name)[0]
        }

        func setting(_ key: String) throws -> Double {
            try #require(contents.metadata[key].flatMap(Double.init), "metadata \(key) is missing")
        }

        var temperature: Double { get throws { try setting("temperature") } }
        var negatives: Int { get throws { Int(try setting("negatives")) } }

        /// Returns a fresh copy of the fixture bank, so no test reads rows that another test updated.
        func bank(momentum: Double = 0.5) throws -> MemoryBank {
            MemoryBank(features: try tensor("bank").clone(), momentum: momentum)
        }

        /// The fixture features as a leaf that collects the gradient.
        func features() throws -> Tensor {
            try tensor("features").clone().requiringGrad()
        }
    }

    /// Checks |actual − expected| ≤ 1e-5 · |expected| (+ 1e-12 for entries that are 0) for every element.
    func expectClose(_ actual: [Double], _ expected: [Double], _ what: String,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(actual.count == expected.count, "\(what): \(actual.count) values, expected \(expected.count)",
                sourceLocation: sourceLocation)
        for (i, (a, e)) in zip(actual, expected).enumerated() {
            #expect(abs(a - e) <= 1e-5 * abs(e) + 1e-12, "\(what)[\(i)]: \(a), PyTorch \(e)", sourceLocation: sourceLocation)
        }
    }

    /// Runs backward from `loss` and compares it and d loss / d features with the fixture's `name`.
    func expectLossAndGradient(_ loss: Tensor, features: Tensor, fixture: Fixture, name: String,
                               sourceLocation: SourceLocation = #_sourceLocation) throws {
        try loss.backward()
        let gradient = try #require(try features.grad)
        expectClose([try loss.item()], [try fixture.scalar(name + "_loss")], name + " loss", sourceLocation: sourceLocation)
        expectClose(try MethodTensors.values(gradient), try fixture.values(name + "_gradient"), name + " gradient",
                    sourceLocation: sourceLocation)
    }

    @Test func nceFixedZMatchesPyTorch() throws {
        let fixture = try Fixture()
        let features = try fixture.features()
        let nce = NCELoss(negativeCount: try fixture.negatives, temperature: try fixture.temperature,
                          normalizationConstant: try fixture.setting("fixed_z"))

        let loss = try nce.loss(features: features, indices: fixture.tensor("indices"), noise: fixture.tensor("noise"),
                                bank: fixture.bank())

        try expectLossAndGradient(loss, features: features, fixture: fixture, name: "nce_fixed")
        #expect(nce.normalizationConstant == (try fixture.setting("fixed_z")), "a fixed Z changed")
    }

    @Test func nceFirstBatchZMatchesPyTorch() throws {
        let fixture = try Fixture()
        let features = try fixture.features()
        let nce = NCELoss(negativeCount: try fixture.negatives, temperature: try fixture.temperature)

        let loss = try nce.loss(features: features, indices: fixture.tensor("indices"), noise: fixture.tensor("noise"),
                                bank: fixture.bank())

        let z = try #require(nce.normalizationConstant)
        expectClose([z], [try fixture.scalar("estimated_z")], "Z")
        try expectLossAndGradient(loss, features: features, fixture: fixture, name: "nce_first_batch")
    }

    @Test func nceMovingAverageZMatchesPyTorch() throws {
        let fixture = try Fixture()
        let features = try fixture.features()
        let nce = NCELoss(negativeCount: try fixture.negatives, temperature: try fixture.temperature,
                          normalizationConstant: try fixture.setting("fixed_z"),
                          normalizationUpdate: .movingAverage(rate: try fixture.setting("z_rate")))

        let loss = try nce.loss(features: features, indices: fixture.tensor("indices"), noise: fixture.tensor("noise"),
                                bank: fixture.bank())

        let z = try #require(nce.normalizationConstant)
        expectClose([z], [try fixture.scalar("momentum_z")], "Z")
        try expectLossAndGradient(loss, features: features, fixture: fixture, name: "nce_momentum")
    }

    @Test func softmaxCrossEntropyMatchesPyTorch() throws {
        let fixture = try Fixture()
        let features = try fixture.features()
        let softmax = SoftmaxCrossEntropyLoss(negativeCount: try fixture.negatives, temperature: try fixture.temperature)

        let loss = try softmax.loss(features: features, indices: fixture.tensor("indices"),
                                    noise: fixture.tensor("noise"), bank: fixture.bank())

        try expectLossAndGradient(loss, features: features, fixture: fixture, name: "softmax_ce")
    }

    @Test func fullSoftmaxMatchesPyTorch() throws {
        let fixture = try Fixture()
        let features = try fixture.features()
        let softmax = NonParametricSoftmaxLoss(temperature: try fixture.temperature)

        let loss = try softmax.loss(features: features, indices: fixture.tensor("indices"), bank: fixture.bank())

        try expectLossAndGradient(loss, features: features, fixture: fixture, name: "full_softmax")
    }

    @Test func proximalPenaltyMatchesPyTorch() throws {
        let fixture = try Fixture()
        let features = try fixture.features()
        let proximal = ProximalRegularization(weight: try fixture.setting("proximal_weight"))

        let penalty = try proximal.penalty(features: features, indices: fixture.tensor("indices"), bank: fixture.bank())

        try expectLossAndGradient(penalty, features: features, fixture: fixture, name: "proximal")
    }

    @Test func bankUpdateMatchesPyTorch() throws {
        // The update names index 5 twice, so this also checks the rule for duplicates.
        let fixture = try Fixture()
        let bank = try fixture.bank(momentum: fixture.setting("bank_momentum"))

        try bank.update(indices: fixture.tensor("update_indices"), with: fixture.tensor("update_features"))

        expectClose(try MethodTensors.values(bank.features), try fixture.values("bank_after_update"), "bank")
    }

    @Test func knnScoresMatchPyTorch() throws {
        let fixture = try Fixture()
        let classes = Int(try fixture.setting("classes"))
        let temperature = try fixture.temperature
        let labels = try fixture.tensor("bank_labels")
        let bank = try fixture.tensor("bank")

        let scores = try WeightedKNN(neighborCount: Int(fixture.setting("neighbors")), temperature: temperature)
            .classScores(queries: fixture.tensor("queries"), bank: bank, bankLabels: labels, classCount: classes)
        // k = 200 is above N = 7, so every row votes.
        let allRows = try WeightedKNN(neighborCount: 200, temperature: temperature)
            .classScores(queries: fixture.tensor("queries"), bank: bank, bankLabels: labels, classCount: classes)

        expectClose(try MethodTensors.values(scores), try fixture.values("knn_scores"), "scores")
        expectClose(try MethodTensors.values(allRows), try fixture.values("knn_scores_all_rows"), "scores with k > N")
    }

    @Test func fixtureInputsAreUnitLength() throws {
        // The fixture must exercise the losses on the inputs they are defined for.
        let fixture = try Fixture()
        for name in ["bank", "features", "update_features", "queries"] {
            let tensor = try fixture.tensor(name)
            let norms = try MethodTensors.values(tensor.norm(dims: [1]))
            #expect(norms.allSatisfy { abs($0 - 1) <= 1e-12 }, "\(name) row norms \(norms)")
        }
    }
}
