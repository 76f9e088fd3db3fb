import Testing
@testable import NPID

/// `TrainingConfiguration.validate()` rejects each out-of-range setting with a
/// `UsageError` that names the command-line flag to fix.
@Suite struct ConfigurationValidationTests {
    /// One bad setting, the flag its message must name, and a label for the test report.
    struct BadSetting: Sendable, CustomTestStringConvertible {
        let flag: String
        let label: String
        let apply: @Sendable (inout TrainingConfiguration) -> Void

        var testDescription: String { "\(flag) \(label)" }
    }

    static let badSettings: [BadSetting] = [
        BadSetting(flag: "--epochs", label: "0") { $0.epochs = 0 },
        BadSetting(flag: "--batch-size", label: "0") { $0.batchSize = 0 },
        BadSetting(flag: "--nce-k", label: "-1") { $0.negativeCount = -1 },
        BadSetting(flag: "--nce-t", label: "0") { $0.temperature = 0 },
        BadSetting(flag: "--nce-t", label: "infinity") { $0.temperature = .infinity },
        BadSetting(flag: "--nce-m", label: "1.0") { $0.bankMomentum = 1.0 },
        BadSetting(flag: "--nce-m", label: "-0.1") { $0.bankMomentum = -0.1 },
        BadSetting(flag: "--nce-m", label: "NaN") { $0.bankMomentum = .nan },
        BadSetting(flag: "--low-dim", label: "0") { $0.model.featureDimension = 0 },
        BadSetting(flag: "--width", label: "0") { $0.model.width = 0 },
        BadSetting(flag: "--knn-k", label: "0") { $0.neighborCount = 0 },
        BadSetting(flag: "--lr", label: "0") { $0.learningRate = 0 },
        BadSetting(flag: "--lr", label: "NaN") { $0.learningRate = .nan },
        BadSetting(flag: "--weight-decay", label: "-1e-4") { $0.weightDecay = -1e-4 },
        BadSetting(flag: "--image-size", label: "4") { $0.imageSize = 4 },
        BadSetting(flag: "--limit-per-class", label: "0") { $0.limitPerClass = 0 },
        BadSetting(flag: "--test-limit-per-class", label: "0") { $0.testLimitPerClass = 0 },
        BadSetting(flag: "--nce-z-rate", label: "0") { $0.normalizationRate = 0 },
        BadSetting(flag: "--nce-z-rate", label: "1.5") { $0.normalizationRate = 1.5 },
        BadSetting(flag: "--nce-z-rate", label: "NaN") { $0.normalizationRate = .nan },
        BadSetting(flag: "--nce-z", label: "momentum with --nce-k 0") {
            $0.normalizationMode = .momentum
            $0.negativeCount = 0
        },
        BadSetting(flag: "--nce-z", label: "momentum with --loss softmax-ce") {
            $0.normalizationMode = .momentum
            $0.loss = .softmaxCrossEntropy
        },
        BadSetting(flag: "--proximal", label: "-0.5") { $0.proximalWeight = -0.5 },
        BadSetting(flag: "--proximal", label: "infinity") { $0.proximalWeight = .infinity },
    ]

    @Test(arguments: badSettings)
    func badSettingNamesFlag(_ setting: BadSetting) {
        var configuration = TrainingConfiguration()
        setting.apply(&configuration)

        do {
            try configuration.validate()
            Issue.record("validate() accepted \(setting.flag) \(setting.label)")
        } catch let error as UsageError {
            #expect(error.message.contains(setting.flag), "message: \(error.message)")
        } catch {
            Issue.record("validate() threw \(type(of: error)), not UsageError: \(error)")
        }
    }

    @Test func defaultsAreValid() throws {
        try TrainingConfiguration.defaults.validate()
    }

    @Test func boundaryValuesAreValid() throws {
        var configuration = TrainingConfiguration()
        configuration.negativeCount = 0
        configuration.bankMomentum = 0
        configuration.weightDecay = 0
        configuration.epochs = 1
        configuration.batchSize = 1
        configuration.neighborCount = 1
        configuration.imageSize = 8
        configuration.limitPerClass = 1
        configuration.normalizationRate = 1
        configuration.proximalWeight = 0

        try configuration.validate()
    }

    @Test func everyVariantIsValid() throws {
        let variants: [(LossFunction, NormalizationMode, Int, Double)] = [
            (.nce, .fixed, 4096, 0), (.nce, .momentum, 4096, 0), (.nce, .fixed, 0, 0),
            (.softmaxCrossEntropy, .fixed, 4096, 0), (.softmaxCrossEntropy, .fixed, 0, 0), (.nce, .fixed, 4096, 0.5),
        ]
        for (loss, normalization, negatives, proximal) in variants {
            var configuration = TrainingConfiguration()
            configuration.loss = loss
            configuration.normalizationMode = normalization
            configuration.negativeCount = negatives
            configuration.proximalWeight = proximal

            try configuration.validate()
        }
    }

    @Test func lossKindFollowsLossAndNegatives() {
        var configuration = TrainingConfiguration()
        #expect(configuration.lossKind == .nce(negatives: 4096))

        configuration.loss = .softmaxCrossEntropy
        #expect(configuration.lossKind == .softmaxCrossEntropy(negatives: 4096))

        configuration.negativeCount = 0
        #expect(configuration.lossKind == .softmax)

        configuration.loss = .nce
        #expect(configuration.lossKind == .softmax)
    }

    @Test func momentumWithSoftmaxNamesFix() {
        var configuration = TrainingConfiguration()
        configuration.normalizationMode = .momentum
        configuration.negativeCount = 0

        #expect(throws: UsageError("--nce-z momentum applies only to NCE; use it with --loss nce and --nce-k above 0, or drop it")) {
            try configuration.validate()
        }
    }
}
