import Foundation
import Torch

/// A training run's complete state, stored as one safetensors file.
///
/// Tensors: `model.<state-dict name>` (weights and batch-norm statistics),
/// `optimizer.momentum.<parameter name>` (SGD momentum buffers, absent before the first
/// step), `memory_bank` [N, D], `rng.cpu` (the state of the run's CPU generator).
/// Metadata: `format`, `configuration` (JSON), `epochs_done`, `steps_done`, `nce_z`
/// and `class_names` (JSON). `nce_z` is Z of NCE, the fixed value or the moving average's
/// current one, and is absent for the softmax losses and before the first step.
public struct Checkpoint {
    public static let format = "swift-npid-checkpoint-1"
    public static let fileName = "checkpoint.safetensors"

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

    /// Reads and checks a checkpoint written by `write(to:)`.
    public static func read(contentsOf path: String) throws -> Checkpoint {
        let contents = try Safetensors.read(contentsOf: path)
        func invalid(_ problem: String) -> CheckpointError {
            CheckpointError(path: path, problem: problem)
        }
        guard contents.metadata["format"] == format else {
            throw invalid("is not a swift-npid checkpoint (metadata format is \(contents.metadata["format"] ?? "missing"), expected \(format))")
        }
        guard let configurationText = contents.metadata["configuration"],
              let configuration = try? JSONDecoder().decode(TrainingConfiguration.self, from: Data(configurationText.utf8)) else {
            throw invalid("has no readable training configuration in its metadata")
        }
        guard let epochs = contents.metadata["epochs_done"].flatMap(Int.init),
              let steps = contents.metadata["steps_done"].flatMap(Int.init) else {
            throw invalid("has no epochs_done or steps_done in its metadata")
        }
        var z: Double?
        if let text = contents.metadata["nce_z"] {
            guard let value = Double(text), value.isFinite, value > 0 else {
                throw invalid("has an invalid NCE normalisation constant Z '\(text)'")
            }
            z = value
        }
        let classNames = contents.metadata["class_names"]
            .flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) } ?? []
        guard let bank = contents["memory_bank"], bank.dtype == .f32, bank.shape.count == 2 else {
            throw invalid("has no float32 [N, D] memory_bank tensor")
        }

        var modelState: [String: SafetensorsTensor] = [:]
        var momentum: [String: SafetensorsTensor] = [:]
        for (name, tensor) in contents.tensors {
            if name.hasPrefix("model.") {
                modelState[String(name.dropFirst("model.".count))] = tensor
            } else if name.hasPrefix("optimizer.momentum.") {
                momentum[String(name.dropFirst("optimizer.momentum.".count))] = tensor
            }
        }
        return Checkpoint(configuration: configuration, epochsDone: epochs, stepsDone: steps,
                          normalizationConstant: z, classNames: classNames, modelState: modelState,
                          momentumBuffers: momentum, memoryBank: bank, cpuRandomState: contents["rng.cpu"])
    }

    /// Writes the checkpoint atomically: the file at `path` is either the previous
    /// checkpoint or this one, whole, whatever happens during the write.
    public func write(to path: String) throws {
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
        var metadata = [
            "format": Checkpoint.format,
            "configuration": String(decoding: try encoder.encode(configuration), as: UTF8.self),
            "epochs_done": String(epochsDone),
            "steps_done": String(stepsDone),
            "class_names": String(decoding: try encoder.encode(classNames), as: UTF8.self),
        ]
        if let normalizationConstant {
            // Swift's shortest round-trip representation restores the same Double.
            metadata["nce_z"] = "\(normalizationConstant)"
        }
        try Safetensors.write(tensors, metadata: metadata, to: path)
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

extension SafetensorsTensor {
    /// Copies `tensor`'s elements to the host, row-major.
    public init(name: String, tensor: Tensor) throws {
        let dtype: SafetensorsDType
        switch tensor.dtype {
        case .float32: dtype = .f32
        case .float64: dtype = .f64
        case .int64: dtype = .i64
        case .int32: dtype = .i32
        case .uint8: dtype = .u8
        case .bool: dtype = .bool
        case .bfloat16: dtype = .bf16
        case .float16: dtype = .f16
        }
        self.init(name: name, dtype: dtype, shape: tensor.shape, bytes: try tensor.rawBytes())
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

    /// Copies saved weights and statistics into this network, checking that every name
    /// is present with the same shape.
    public func load(_ saved: [String: SafetensorsTensor], from path: String) throws {
        for entry in state {
            guard let value = saved[entry.name] else {
                throw CheckpointError(path: path, problem: "has no tensor model.\(entry.name); it was saved from a different architecture than \(configuration.architecture.rawValue) width \(configuration.width)")
            }
            guard value.shape == entry.tensor.shape else {
                throw CheckpointError(path: path, problem: "contains model.\(entry.name) with shape \(value.shape), but the network needs \(entry.tensor.shape)")
            }
            try withNoGrad { try entry.tensor.copy(from: value.tensor()) }
        }
    }
}
