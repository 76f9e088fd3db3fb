import Foundation
import Testing
@testable import NPID
import Torch

/// `TrainingConfiguration` JSON: configurations written before the objective variants
/// existed still decode, and every field survives a round trip.
@Suite struct ConfigurationDecodingTests {
    /// config.json as the version without `loss`, `normalizationMode`, `normalizationRate` and
    /// `proximalWeight` wrote it.
    static let configurationWithoutVariants = """
        {
          "bankMomentum" : 0.25,
          "batchSize" : 6,
          "epochs" : 37,
          "imageSize" : 16,
          "learningRate" : 0.3,
          "limitPerClass" : 3,
          "model" : {
            "architecture" : "resnet18",
            "featureDimension" : 8,
            "stem" : "cifar",
            "width" : 4
          },
          "negativeCount" : 9,
          "neighborCount" : 11,
          "schedule" : "cosine",
          "seed" : 18364758544493064721,
          "sgdMomentum" : 0.8,
          "temperature" : 0.07,
          "weightDecay" : 0.0001
        }
        """

    /// Returns a configuration with every field away from its default.
    static func movedConfiguration() -> TrainingConfiguration {
        var configuration = CheckpointRoundTripTests.configuration()
        configuration.testLimitPerClass = 2
        configuration.temperature = 0.07 * 3
        // Only decoded, never validated, so the moving-average Z may sit beside softmax-CE.
        configuration.loss = .softmaxCrossEntropy
        configuration.synchronizeBatchNorm = true
        return configuration
    }

    @Test func configurationWithoutVariantsDecodes() throws {
        let configuration = try JSONDecoder().decode(TrainingConfiguration.self,
                                                     from: Data(Self.configurationWithoutVariants.utf8))

        #expect(configuration.loss == TrainingConfiguration.defaults.loss)
        #expect(configuration.normalizationMode == TrainingConfiguration.defaults.normalizationMode)
        #expect(configuration.normalizationRate == TrainingConfiguration.defaults.normalizationRate)
        #expect(configuration.proximalWeight == TrainingConfiguration.defaults.proximalWeight)
        #expect(configuration.negativeCount == 9)
        #expect(configuration.bankMomentum == 0.25)
        #expect(configuration.seed == 0xFEDC_BA98_7654_3211)
        #expect(configuration.limitPerClass == 3)
        #expect(configuration.testLimitPerClass == nil)
        #expect(configuration.model == ModelConfiguration(architecture: .resnet18, stem: .cifar, width: 4,
                                                          featureDimension: 8))
    }

    @Test func checkpointWithoutVariantsReads() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let path = folder.appendingPathComponent(Checkpoint.fileName).path
        // A checkpoint as saved before the variant fields existed: the latest file of a
        // real checkpoint with its configuration replaced and the checksum recomputed.
        let model = try ResNet(CheckpointRoundTripTests.modelConfiguration)
        try CheckpointRoundTripTests.makeCheckpoint(model: model, z: 12.5).write(to: path)
        let saved = try Safetensors.read(contentsOf: path)
        let tensors = saved.order.map { saved.tensors[$0]! }
        var metadata = saved.metadata
        metadata["configuration"] = Self.configurationWithoutVariants
        metadata["epochs_done"] = "3"
        metadata["steps_done"] = "30"
        metadata[Checkpoint.checksumKey] = Checkpoint.hexadecimal(Checkpoint.checksum(tensors: tensors, metadata: metadata))
        try Safetensors.write(tensors, metadata: metadata, to: path)

        let checkpoint = try Checkpoint.read(contentsOf: path)

        #expect(checkpoint.configuration.epochs == 37)
        #expect(checkpoint.configuration.loss == .nce)
        #expect(checkpoint.configuration.normalizationMode == .fixed)
        #expect(checkpoint.normalizationConstant == 12.5)
    }

    @Test func everyFieldRoundTrips() throws {
        let original = Self.movedConfiguration()

        let decoded = try JSONDecoder().decode(TrainingConfiguration.self, from: JSONEncoder().encode(original))

        #expect(decoded == original)
    }

    @Test func movedConfigurationCoversEveryField() {
        // A field that the round trip leaves at its default could be missing from the
        // hand-written decoder unnoticed, so every stored property must be moved.
        let moved = Mirror(reflecting: Self.movedConfiguration()).children
        let defaults = Mirror(reflecting: TrainingConfiguration.defaults).children
        for (field, defaultValue) in zip(moved, defaults) {
            let label = field.label ?? "?"
            #expect(String(describing: field.value) != String(describing: defaultValue.value),
                    "\(label) keeps its default in movedConfiguration(); give it another value there")
        }
    }

    @Test func missingOriginalFieldIsRejected() throws {
        let withoutEpochs = Self.configurationWithoutVariants.replacingOccurrences(of: "\"epochs\" : 37,", with: "")

        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(TrainingConfiguration.self, from: Data(withoutEpochs.utf8))
        }
    }
}
