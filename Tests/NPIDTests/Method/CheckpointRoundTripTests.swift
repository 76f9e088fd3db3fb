import Foundation
import Testing
@testable import NPID
import Torch

/// A checkpoint must carry everything a resumed run needs: configuration, progress
/// counters, Z of NCE, class names, model state, momentum buffers, the bank and the
/// generator state, all bit for bit.
@Suite struct CheckpointRoundTripTests {
    static let modelConfiguration = ModelConfiguration(architecture: .resnet18, stem: .cifar, width: 4,
                                                       featureDimension: 8)

    /// Returns a configuration with every field moved away from its default, using values
    /// that are hard to round-trip.
    static func configuration() -> TrainingConfiguration {
        var configuration = TrainingConfiguration()
        configuration.model = modelConfiguration
        configuration.epochs = 37
        configuration.batchSize = 6
        configuration.learningRate = 0.1 + 0.2
        configuration.sgdMomentum = 0.8
        configuration.weightDecay = 1e-4
        configuration.schedule = .cosine
        configuration.negativeCount = 9
        configuration.temperature = 0.07
        configuration.bankMomentum = 0.25
        configuration.seed = 0xFEDC_BA98_7654_3211
        configuration.limitPerClass = 3
        configuration.testLimitPerClass = nil
        configuration.neighborCount = 11
        configuration.imageSize = 16
        // Moving-average Z needs NCE, so `loss` keeps its default here; decoding every
        // field is covered by ConfigurationDecodingTests.
        configuration.loss = .nce
        configuration.normalizationMode = .momentum
        configuration.normalizationRate = 0.1 + 0.7
        configuration.proximalWeight = 1e-3 / 3
        return configuration
    }

    static func makeCheckpoint(model: ResNet, z: Double?) throws -> Checkpoint {
        // The bank's rows have the configuration's feature dimension, as reading checks.
        let bankValues = MethodReference.unitRows(MethodReference.waves(count: 40, phase: 0.9), columns: 8)
        let momentumValues = MethodReference.waves(count: 8, phase: 4.2).map { Float($0) }
        return Checkpoint(
            configuration: configuration(),
            epochsDone: 12,
            stepsDone: 9_876_543,
            normalizationConstant: z,
            classNames: ["airplane", "naïve \"quoted\" name", "日本"],
            modelState: try model.stateEntries(),
            momentumBuffers: [
                "fc.bias": SafetensorsTensor(name: "fc.bias", shape: [8], values: momentumValues),
            ],
            memoryBank: try SafetensorsTensor(name: "memory_bank",
                                              tensor: MethodTensors.float(bankValues, shape: [5, 8])),
            cpuRandomState: try SafetensorsTensor(name: "rng.cpu", tensor: Torch.cpuRandomState()),
            stepInEpoch: 4, epochLossSum: 0.1 + 0.7, epochImageCount: 22)
    }

    /// Compares dtype, shape and bytes. The stored name carries the file's prefix, so it is not compared.
    static func sameContents(_ a: SafetensorsTensor?, _ b: SafetensorsTensor) -> Bool {
        guard let a else { return false }
        return a.dtype == b.dtype && a.shape == b.shape && a.bytes == b.bytes
    }

    @Test func roundTripKeepsEveryField() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let path = folder.appendingPathComponent(Checkpoint.fileName).path
        let model = try ResNet(Self.modelConfiguration)
        let z = (0.1 + 0.2) * 12_345.678_9
        let original = try Self.makeCheckpoint(model: model, z: z)

        try original.write(to: path)
        let restored = try Checkpoint.read(contentsOf: path)

        #expect(restored.configuration == original.configuration)
        #expect(restored.configuration.seed == 0xFEDC_BA98_7654_3211)
        #expect(restored.epochsDone == 12)
        #expect(restored.stepsDone == 9_876_543)
        #expect(restored.stepInEpoch == 4)
        #expect(restored.epochLossSum == 0.1 + 0.7)
        #expect(restored.epochImageCount == 22)
        #expect(restored.normalizationConstant == z)
        #expect(restored.classNames == original.classNames)
        #expect(Set(restored.modelState.keys) == Set(original.modelState.keys))
        for (name, tensor) in original.modelState {
            #expect(Self.sameContents(restored.modelState[name], tensor), "model tensor \(name) differs")
        }
        #expect(Set(restored.momentumBuffers.keys) == ["fc.bias"])
        #expect(Self.sameContents(restored.momentumBuffers["fc.bias"], original.momentumBuffers["fc.bias"]!))
        #expect(Self.sameContents(restored.memoryBank, original.memoryBank))
        #expect(Self.sameContents(restored.cpuRandomState, try #require(original.cpuRandomState)))
    }

    @Test func missingZStaysMissing() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let path = folder.appendingPathComponent(Checkpoint.fileName).path

        try Self.makeCheckpoint(model: ResNet(Self.modelConfiguration), z: nil).write(to: path)
        let restored = try Checkpoint.read(contentsOf: path)

        #expect(restored.normalizationConstant == nil)
    }

    @Test func restoredStateReproducesOutputs() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let path = folder.appendingPathComponent(Checkpoint.fileName).path
        let model = try ResNet(Self.modelConfiguration)
        let images = try MethodTensors.float(MethodReference.waves(count: 2 * 3 * 8 * 8, phase: 1.0, step: 0.41),
                                             shape: [2, 3, 8, 8])
        _ = try model(images, training: true)
        let expected = try model(images, training: false).toArray(of: Float.self)

        try Self.makeCheckpoint(model: model, z: 3.5).write(to: path)
        let restored = try Checkpoint.read(contentsOf: path)
        let rebuilt = try ResNet(restored.configuration.model)
        try rebuilt.load(restored.modelState, from: path)

        #expect(try rebuilt(images, training: false).toArray(of: Float.self) == expected)
    }

    @Test func plainSafetensorsFileIsRejected() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let path = folder.appendingPathComponent("weights.safetensors").path
        let bank = SafetensorsTensor(name: "memory_bank", shape: [2, 2], values: [Float](arrayLiteral: 1, 0, 0, 1))
        try Safetensors.write([bank], metadata: ["producer": "another tool"], to: path)

        do {
            _ = try Checkpoint.read(contentsOf: path)
            Issue.record("reading a plain safetensors file as a checkpoint did not throw")
        } catch let error as CheckpointError {
            #expect(error.path == path)
            #expect(error.description.contains(path), "message does not name the file: \(error.description)")
            #expect(error.description.contains("not a swift-npid checkpoint"), "message: \(error.description)")
        }
    }

    @Test func otherFormatVersionIsRejected() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let path = folder.appendingPathComponent("future.safetensors").path
        let bank = SafetensorsTensor(name: "memory_bank", shape: [1, 2], values: [Float](arrayLiteral: 1, 0))
        try Safetensors.write([bank], metadata: ["format": "swift-npid-checkpoint-999"], to: path)

        #expect(throws: CheckpointError.self) {
            try Checkpoint.read(contentsOf: path)
        }
    }
}
