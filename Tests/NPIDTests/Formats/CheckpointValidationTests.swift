import Foundation
import Testing
@testable import NPID
import Torch

/// A damaged, edited or foreign checkpoint must be rejected with a sentence naming the file,
/// before any network is built from its configuration or any tensor is copied.
@Suite struct CheckpointValidationTests {
    let name = CheckpointSamples.name

    func contents() throws -> SafetensorsContents {
        try Safetensors.parse(CheckpointSamples.bytes())
    }

    @Test func intactCheckpointLoads() throws {
        let checkpoint = try Checkpoint.parse(CheckpointSamples.bytes(), name: name)

        #expect(checkpoint.epochsDone == 12)
        #expect(checkpoint.stepInEpoch == 4)
        #expect(checkpoint.normalizationConstant == 7.25)
    }

    @Test(arguments: [
        (["airplane", "naïve \"quoted\" name", "日本", "zebra"], "only the data has zebra"),
        (["airplane", "日本"], "only the checkpoint has naïve \"quoted\" name"),
        (["日本", "airplane", "naïve \"quoted\" name"], "the classes are in another order"),
    ])
    func otherClassesNameOnlyTheDifference(dataClasses: [String], difference: String) throws {
        let checkpoint = try CheckpointSamples.checkpoint()

        #expect {
            try checkpoint.checkClassNames(dataClasses, path: "c.safetensors")
        } throws: { error in
            let message = (error as? UsageError)?.message ?? ""
            return message.hasSuffix("; \(difference); pass the data folder the run trained on")
        }
    }

    @Test func flippedDataBitIsDamage() throws {
        let original = try CheckpointSamples.bytes()
        let recorded = try #require(try Safetensors.parse(original).metadata[Checkpoint.checksumKey])
        var damaged = original
        // The last bytes belong to the generator state, the last tensor in the file.
        damaged[damaged.count - 3] ^= 0x10

        let message = try #require(CheckpointSamples.rejection(damaged))

        #expect(message.hasPrefix("checkpoint \(name) is damaged: its contents have CRC-32C "), "\(message)")
        #expect(message.hasSuffix(", but its metadata records \(recorded); use another checkpoint of the run"), "\(message)")
    }

    @Test func editedMetadataIsDamage() throws {
        // A learning rate changed in place, without a new checksum, as a bit flip in the header could do.
        let original = try contents()
        var edited = try CheckpointSamples.editedConfiguration(original) { $0["learningRate"] = 0.7 }
        edited.metadata[Checkpoint.checksumKey] = original.metadata[Checkpoint.checksumKey]
        let tensors = edited.order.map { edited.tensors[$0]! }
        let bytes = try Safetensors.serialize(tensors, metadata: edited.metadata)

        let message = try #require(CheckpointSamples.rejection(bytes))

        #expect(message.hasPrefix("checkpoint \(name) is damaged: "), "\(message)")
    }

    @Test func missingChecksumIsRejected() throws {
        var edited = try contents()
        edited.metadata[Checkpoint.checksumKey] = nil
        let tensors = edited.order.map { edited.tensors[$0]! }

        let message = CheckpointSamples.rejection(try Safetensors.serialize(tensors, metadata: edited.metadata))

        #expect(message == "checkpoint \(name) has no crc32c checksum in its metadata, so its contents cannot be verified; it was written by an older npid or its header is damaged, so use another checkpoint")
    }

    /// A configuration edit, re-signed so that only the checks after the checksum can reject it,
    /// and the exact message expected.
    struct ConfigurationEdit: Sendable, CustomTestStringConvertible {
        let label: String
        let key: String
        let value: @Sendable () -> Any
        let message: String

        var testDescription: String { label }
    }

    static let configurationEdits = [
        ConfigurationEdit(label: "huge width", key: "model", value: {
            ["architecture": "resnet18", "stem": "cifar", "width": 1_000_000, "featureDimension": 8] as [String: Any]
        }, message: "contains model.conv1.weight with shape [4, 3, 3, 3], but its configuration (resnet18, width 1000000, feature dimension 8) needs [1000000, 3, 3, 3]"),
        ConfigurationEdit(label: "other architecture", key: "model", value: {
            ["architecture": "resnet34", "stem": "cifar", "width": 4, "featureDimension": 8] as [String: Any]
        }, message: "has no tensor model.layer4.2.conv2.weight, which a resnet34 network needs"),
        ConfigurationEdit(label: "other stem", key: "model", value: {
            ["architecture": "resnet18", "stem": "imagenet", "width": 4, "featureDimension": 8] as [String: Any]
        }, message: "contains model.conv1.weight with shape [4, 3, 3, 3], but its configuration (resnet18, width 4, feature dimension 8) needs [4, 3, 7, 7]"),
        ConfigurationEdit(label: "other feature dimension", key: "model", value: {
            ["architecture": "resnet18", "stem": "cifar", "width": 4, "featureDimension": 16] as [String: Any]
        }, message: "has a memory_bank of shape [5, 8], but its configuration has feature dimension 16"),
        ConfigurationEdit(label: "zero epochs", key: "epochs", value: { 0 },
                          message: "has an invalid training configuration: --epochs must be at least 1, got 0"),
        ConfigurationEdit(label: "unknown architecture", key: "model", value: {
            ["architecture": "vgg16", "stem": "cifar", "width": 4, "featureDimension": 8] as [String: Any]
        }, message: "has no readable training configuration in its metadata"),
    ]

    @Test(arguments: configurationEdits)
    func editedConfigurationIsRejected(_ edit: ConfigurationEdit) throws {
        let edited = try CheckpointSamples.editedConfiguration(contents()) { $0[edit.key] = edit.value() }

        let message = CheckpointSamples.rejection(try CheckpointSamples.resigned(edited))

        #expect(message == "checkpoint \(name) \(edit.message)")
    }

    @Test(arguments: [
        ("step_in_epoch", "99", "has inconsistent progress counters (steps_done 9876543, step_in_epoch 99, epoch_image_count 22, epoch_loss_sum 0.7999999999999999) for batch size 6"),
        ("epoch_image_count", "25", "has inconsistent progress counters (steps_done 9876543, step_in_epoch 4, epoch_image_count 25, epoch_loss_sum 0.7999999999999999) for batch size 6"),
        ("epochs_done", "-1", "has an invalid epochs_done '-1' in its metadata"),
        ("steps_done", "", "has an invalid steps_done '' in its metadata"),
        ("epoch_loss_sum", "nan", "has an invalid epoch_loss_sum 'nan' in its metadata"),
        ("nce_z", "0", "has an invalid NCE normalisation constant Z '0'"),
        ("class_names", "cat", "has class_names metadata that is not a JSON array of strings"),
    ])
    func editedCounterIsRejected(key: String, value: String, problem: String) throws {
        var edited = try contents()
        edited.metadata[key] = value

        let message = CheckpointSamples.rejection(try CheckpointSamples.resigned(edited))

        #expect(message == "checkpoint \(name) \(problem)")
    }

    @Test func wrongDTypeGeneratorStateIsRejected() throws {
        var edited = try contents()
        let state = try #require(edited.tensors["rng.cpu"])
        edited.tensors["rng.cpu"] = SafetensorsTensor(name: "rng.cpu", dtype: .i8, shape: state.shape, bytes: state.bytes)

        let message = CheckpointSamples.rejection(try CheckpointSamples.resigned(edited))

        #expect(message == "checkpoint \(name) has an rng.cpu tensor of dtype I8 and shape \(state.shape), but a generator state is a U8 vector")
    }

    // MARK: Fit to the network that resumes the run

    func resumable(_ checkpoint: Checkpoint, stepsPerEpoch: Int = 5) throws -> String? {
        let model = try ResNet(CheckpointRoundTripTests.modelConfiguration)
        do {
            try checkpoint.checkResumable(into: model, stepsPerEpoch: stepsPerEpoch, path: name)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func intactCheckpointIsResumable() throws {
        #expect(try resumable(CheckpointSamples.checkpoint()) == nil)
    }

    @Test func momentumOfWrongShapeIsRejected() throws {
        var checkpoint = try CheckpointSamples.checkpoint()
        checkpoint.momentumBuffers["fc.bias"] = SafetensorsTensor(name: "fc.bias", shape: [2, 4],
                                                                 values: [Float](repeating: 0, count: 8))

        #expect(try resumable(checkpoint) == "checkpoint \(name) contains optimizer.momentum.fc.bias with shape [2, 4], but the parameter has shape [8]")
    }

    @Test func momentumOfUnknownParameterIsRejected() throws {
        var checkpoint = try CheckpointSamples.checkpoint()
        checkpoint.momentumBuffers["fc.scale"] = SafetensorsTensor(name: "fc.scale", shape: [8],
                                                                  values: [Float](repeating: 0, count: 8))

        #expect(try resumable(checkpoint) == "checkpoint \(name) contains optimizer.momentum.fc.scale, but the network has no parameter fc.scale")
    }

    @Test func shortGeneratorStateIsRejected() throws {
        var checkpoint = try CheckpointSamples.checkpoint()
        let expected = try Torch.cpuRandomState().shape
        checkpoint.cpuRandomState = SafetensorsTensor(name: "rng.cpu", shape: [16], values: [UInt8](repeating: 1, count: 16))

        #expect(try resumable(checkpoint) == "checkpoint \(name) has an rng.cpu generator state of shape [16], but libtorch's CPU generator needs \(expected)")
    }

    @Test func stepBeyondEpochIsRejected() throws {
        let checkpoint = try CheckpointSamples.checkpoint()

        #expect(try resumable(checkpoint, stepsPerEpoch: 3) == "checkpoint \(name) stopped after step 4 of an epoch, but an epoch here has 3 steps")
    }

    @Test func modelTensorOfWrongDTypeIsRejected() throws {
        var checkpoint = try CheckpointSamples.checkpoint()
        let weight = try #require(checkpoint.modelState["fc.weight"])
        checkpoint.modelState["fc.weight"] = SafetensorsTensor(name: weight.name, dtype: .i32, shape: weight.shape,
                                                              bytes: weight.bytes)

        #expect(try resumable(checkpoint) == "checkpoint \(name) contains model.fc.weight of dtype I32, but the network needs F32")
    }
}
