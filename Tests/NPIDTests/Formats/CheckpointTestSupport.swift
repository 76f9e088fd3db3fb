import Foundation
import Testing
@testable import NPID
import Torch

/// Builders for damaged and edited checkpoints, shared by the validation and fuzz tests.
enum CheckpointSamples {
    static let name = "/runs/x/checkpoint.safetensors"

    /// Builds a small, valid checkpoint: ResNet-18 of width 4 with an 8-d feature, a bank of 5
    /// rows, momentum for the projection and a partial epoch of 4 steps.
    static func checkpoint() throws -> Checkpoint {
        try CheckpointRoundTripTests.makeCheckpoint(model: ResNet(CheckpointRoundTripTests.modelConfiguration), z: 7.25)
    }

    static func bytes() throws -> [UInt8] {
        try checkpoint().serialized()
    }

    /// Serializes edited contents in their tensor order, with the checksum recomputed as the
    /// writer computes it, so that only the checks after the checksum can reject them.
    static func resigned(_ contents: SafetensorsContents) throws -> [UInt8] {
        let tensors = contents.order.compactMap { contents.tensors[$0] }
        var metadata = contents.metadata
        metadata[Checkpoint.checksumKey] = Checkpoint.hexadecimal(Checkpoint.checksum(tensors: tensors, metadata: metadata))
        return try Safetensors.serialize(tensors, metadata: metadata)
    }

    /// Returns the checkpoint's configuration metadata with `edit` applied to its JSON object.
    static func editedConfiguration(_ contents: SafetensorsContents,
                                    _ edit: (inout [String: Any]) -> Void) throws -> SafetensorsContents {
        var edited = contents
        let text = try #require(contents.metadata["configuration"])
        var object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        edit(&object)
        edited.metadata["configuration"] = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        return edited
    }

    /// Parses `bytes` as a checkpoint and returns the error message, or nil when it loads.
    static func rejection(_ bytes: [UInt8]) -> String? {
        do {
            _ = try Checkpoint.parse(bytes, name: name)
            return nil
        } catch {
            return "\(error)"
        }
    }
}
