import Foundation
import Torch

/// A training run's complete state, stored as one safetensors file.
///
/// Tensors: `model.<state-dict name>` (weights and batch-norm statistics),
/// `optimizer.momentum.<parameter name>` (SGD momentum buffers, absent before the first
/// step), `memory_bank` [N, D], `rng.cpu` (the state of the run's CPU generator).
/// Metadata: `format`, `configuration` (JSON), `epochs_done`, `steps_done`, `nce_z`
/// and `class_names` (JSON). `nce_z` is Z of NCE, the fixed value or the moving average's
/// current one, and is absent for the softmax losses and before the first step. A run stopped
/// mid-epoch also needs `step_in_epoch`, `epoch_loss_sum` and `epoch_image_count`, which are 0
/// at an epoch's end. `world_size` is the number of ranks that wrote it (1 when absent).
/// `training_images` identifies the images of the bank's rows (see `TrainingImageList`).
/// `crc32c` is the checksum of everything else (see `checksum(tensors:metadata:)`).
public struct Checkpoint {
    public static let format = "swift-npid-checkpoint-1"
    public static let fileName = "checkpoint.safetensors"
    /// Metadata key of the checksum, as 8 lowercase hexadecimal digits.
    static let checksumKey = "crc32c"

    public var configuration: TrainingConfiguration
    /// Epochs finished; a resumed run starts at this epoch (counted from 0).
    public var epochsDone: Int
    public var stepsDone: Int
    public var normalizationConstant: Double?
    public var classNames: [String]
    public var modelState: [String: SafetensorsTensor]
    public var momentumBuffers: [String: SafetensorsTensor]
    public var memoryBank: SafetensorsTensor
    public var cpuRandomState: SafetensorsTensor?
    /// Steps of epoch `epochsDone` already taken: 0 at an epoch's end, more when the run
    /// stopped mid-epoch. A resumed run skips these batches of the epoch's fixed order.
    public var stepInEpoch = 0
    /// Sum of the per-image loss over the `stepInEpoch` steps taken, so that the resumed
    /// epoch reports the same mean loss as an uninterrupted one.
    public var epochLossSum = 0.0
    /// Images seen in the `stepInEpoch` steps taken: also the position in the epoch's
    /// shuffled order where a resumed run continues, whatever its number of ranks.
    public var epochImageCount = 0
    /// Ranks of the data-parallel run that wrote the checkpoint (1 for a single process);
    /// each step took `worldSize` × the configuration's batch size images.
    public var worldSize = 1
    /// `TrainingImageList.fingerprint(of:)` of the training images, nil in checkpoints
    /// written before it was saved.
    public var trainingImages: String?

    /// Reads a checkpoint written by `write(to:)` and checks it: the safetensors layout, the
    /// checksum, the configuration, the counters and the shapes of the memory bank and the
    /// network's largest tensors. Throws `SafetensorsError`, `CheckpointError` or `FileIOError`.
    public static func read(contentsOf path: String) throws -> Checkpoint {
        try decode(Safetensors.read(contentsOf: path), path: path)
    }

    /// Parses and checks checkpoint bytes held in memory, as `read(contentsOf:)` does.
    /// Error messages show `name` in place of a path.
    public static func parse(_ bytes: [UInt8], name: String = "(in memory)") throws -> Checkpoint {
        try decode(Safetensors.parse(bytes, name: name), path: name)
    }

    /// Writes the checkpoint atomically: the file at `path` is either the previous
    /// checkpoint or this one, whole, whatever happens during the write.
    public func write(to path: String) throws {
        let (tensors, metadata) = try entries()
        try Safetensors.write(tensors, metadata: metadata, to: path)
    }

    /// Returns the bytes that `write(to:)` puts in the file.
    func serialized() throws -> [UInt8] {
        let (tensors, metadata) = try entries()
        return try Safetensors.serialize(tensors, metadata: metadata)
    }

    /// Returns the tensors in file order and the metadata, checksum included.
    private func entries() throws -> ([SafetensorsTensor], [String: String]) {
        var tensors: [SafetensorsTensor] = []
        for name in modelState.keys.sorted() {
            tensors.append(renamed(modelState[name]!, "model." + name))
        }
        for name in momentumBuffers.keys.sorted() {
            tensors.append(renamed(momentumBuffers[name]!, "optimizer.momentum." + name))
        }
        tensors.append(renamed(memoryBank, "memory_bank"))
        if let cpuRandomState {
            tensors.append(renamed(cpuRandomState, "rng.cpu"))
        }

        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Swift's shortest round-trip representation of a Double restores the same value.
        var metadata = [
            "format": Checkpoint.format,
            "configuration": String(decoding: try encoder.encode(configuration), as: UTF8.self),
            "epochs_done": String(epochsDone),
            "steps_done": String(stepsDone),
            "step_in_epoch": String(stepInEpoch),
            "epoch_loss_sum": "\(epochLossSum)",
            "epoch_image_count": String(epochImageCount),
            "world_size": String(worldSize),
            "class_names": String(decoding: try encoder.encode(classNames), as: UTF8.self),
        ]
        if let normalizationConstant {
            metadata["nce_z"] = "\(normalizationConstant)"
        }
        if let trainingImages {
            metadata["training_images"] = trainingImages
        }
        metadata[Self.checksumKey] = Self.hexadecimal(Self.checksum(tensors: tensors, metadata: metadata))
        return (tensors, metadata)
    }

    /// Returns the CRC-32C of the metadata other than the checksum itself (keys sorted), of
    /// each tensor's name, dtype and shape in file order, and of the tensor data in file order.
    /// Every byte that `read` interprets is covered, so any damage that the safetensors layout
    /// check lets through changes the checksum.
    static func checksum(tensors: [SafetensorsTensor], metadata: [String: String]) -> UInt32 {
        var crc = CRC32C()
        let separator: [UInt8] = [0]
        for key in metadata.keys.sorted() where key != checksumKey {
            crc.update(key)
            crc.update(separator)
            crc.update(metadata[key]!)
            crc.update(separator)
        }
        for tensor in tensors {
            crc.update(tensor.name)
            crc.update(separator)
            crc.update(tensor.dtype.rawValue)
            crc.update(separator)
            crc.update(tensor.shape.map(String.init).joined(separator: ","))
            crc.update(separator)
        }
        for tensor in tensors {
            crc.update(tensor.bytes)
        }
        return crc.value
    }

    static func hexadecimal(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    private func renamed(_ tensor: SafetensorsTensor, _ name: String) -> SafetensorsTensor {
        var copy = tensor
        copy.name = name
        return copy
    }
}

/// A checkpoint that is readable as safetensors but not usable, naming the file.
public struct CheckpointError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let problem: String

    public var description: String { "checkpoint \(path) \(problem)" }
}

// MARK: conversion between libtorch tensors and safetensors entries

extension SafetensorsDType {
    /// Creates the safetensors dtype that stores a libtorch element type.
    init(_ dtype: DType) {
        switch dtype {
        case .float32: self = .f32
        case .float64: self = .f64
        case .int64: self = .i64
        case .int32: self = .i32
        case .uint8: self = .u8
        case .bool: self = .bool
        case .bfloat16: self = .bf16
        case .float16: self = .f16
        }
    }
}

extension SafetensorsTensor {
    /// Copies `tensor`'s elements to the host, row-major.
    public init(name: String, tensor: Tensor) throws {
        self.init(name: name, dtype: SafetensorsDType(tensor.dtype), shape: tensor.shape, bytes: try tensor.rawBytes())
    }

    /// Creates a CPU tensor with this entry's values.
    public func tensor() throws -> Tensor {
        let dtype: DType
        switch self.dtype {
        case .f32: dtype = .float32
        case .f64: dtype = .float64
        case .i64: dtype = .int64
        case .i32: dtype = .int32
        case .u8: dtype = .uint8
        case .bool: dtype = .bool
        case .bf16: dtype = .bfloat16
        case .f16: dtype = .float16
        default:
            throw SafetensorsError(path: nil, description: "tensor \(name) has dtype \(self.dtype.rawValue), which swift-npid does not load")
        }
        return try bytes.withUnsafeBytes { try Tensor(bytes: $0, dtype: dtype, shape: shape) }
    }
}

extension ResNet {
    /// Copies the weights and batch-norm statistics into safetensors entries named as in PyTorch.
    public func stateEntries() throws -> [String: SafetensorsTensor] {
        var entries: [String: SafetensorsTensor] = [:]
        for entry in state {
            entries[entry.name] = try SafetensorsTensor(name: entry.name, tensor: entry.tensor)
        }
        return entries
    }

    /// Checks that `saved` has every tensor of this network with the same shape and dtype.
    public func checkLoadable(_ saved: [String: SafetensorsTensor], from path: String) throws {
        for entry in state {
            guard let value = saved[entry.name] else {
                throw CheckpointError(path: path, problem: "has no tensor model.\(entry.name); it was saved from a different architecture than \(configuration.architecture.rawValue) width \(configuration.width)")
            }
            guard value.shape == entry.tensor.shape else {
                throw CheckpointError(path: path, problem: "contains model.\(entry.name) with shape \(value.shape), but the network needs \(entry.tensor.shape)")
            }
            let dtype = SafetensorsDType(entry.tensor.dtype)
            guard value.dtype == dtype else {
                throw CheckpointError(path: path, problem: "contains model.\(entry.name) of dtype \(value.dtype.rawValue), but the network needs \(dtype.rawValue)")
            }
        }
    }

    /// Copies saved weights and statistics into this network. Every name, shape and dtype is
    /// checked before the first copy, so a mismatch leaves the network unchanged.
    public func load(_ saved: [String: SafetensorsTensor], from path: String) throws {
        try checkLoadable(saved, from: path)
        for entry in state {
            try withNoGrad { try entry.tensor.copy(from: saved[entry.name]!.tensor()) }
        }
    }
}
