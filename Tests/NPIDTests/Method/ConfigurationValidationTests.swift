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

        try configuration.validate()
    }
}
