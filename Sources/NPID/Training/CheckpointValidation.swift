import Foundation
import Torch

// Checks that run before a checkpoint's contents are trusted. `decode` needs only the file,
// and `checkResumable` also needs the network that will continue the run. Together they
// make a damaged or foreign file fail with a sentence naming it, before any tensor is copied
// or any network is built from its configuration.

extension Checkpoint {
    /// Builds a checkpoint from parsed safetensors contents, checking the format, the
    /// checksum, the configuration, the counters and the shapes the configuration implies.
    static func decode(_ contents: SafetensorsContents, path: String) throws -> Checkpoint {
        func invalid(_ problem: String) -> CheckpointError {
            CheckpointError(path: path, problem: problem)
        }
        let metadata = contents.metadata
        guard metadata["format"] == format else {
            throw invalid("is not a swift-npid checkpoint (metadata format is \(metadata["format"] ?? "missing"), expected \(format))")
        }
        try checkChecksum(contents, path: path)

        guard let configurationText = metadata["configuration"],
              let configuration = try? JSONDecoder().decode(TrainingConfiguration.self, from: Data(configurationText.utf8)) else {
            throw invalid("has no readable training configuration in its metadata")
        }
        do {
            try configuration.validate()
        } catch let error as UsageError {
            throw invalid("has an invalid training configuration: \(error.message)")
        }

        func count(_ key: String) throws -> Int {
            guard let text = metadata[key] else {
                throw invalid("has no \(key) in its metadata")
            }
            guard let value = Int(text), value >= 0 else {
                throw invalid("has an invalid \(key) '\(text)' in its metadata")
            }
            return value
        }
        let epochs = try count("epochs_done")
        let steps = try count("steps_done")
        let stepInEpoch = try count("step_in_epoch")
        let epochImageCount = try count("epoch_image_count")
        let worldSize = metadata["world_size"] == nil ? 1 : try count("world_size")
        guard worldSize >= 1 else {
            throw invalid("has an invalid world_size '0' in its metadata")
        }
        guard let lossText = metadata["epoch_loss_sum"] else {
            throw invalid("has no epoch_loss_sum in its metadata")
        }
        guard let epochLossSum = Double(lossText), epochLossSum.isFinite, epochLossSum >= 0 else {
            throw invalid("has an invalid epoch_loss_sum '\(lossText)' in its metadata")
        }
        try checkPartialEpoch(stepInEpoch: stepInEpoch, imageCount: epochImageCount, lossSum: epochLossSum,
                              stepsDone: steps, batchSize: configuration.batchSize * worldSize, path: path)

        var z: Double?
        if let text = metadata["nce_z"] {
            guard let value = Double(text), value.isFinite, value > 0 else {
                throw invalid("has an invalid NCE normalisation constant Z '\(text)'")
            }
            z = value
        }
        var classNames: [String] = []
        if let text = metadata["class_names"] {
            guard let names = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else {
                throw invalid("has class_names metadata that is not a JSON array of strings")
            }
            classNames = names
        }

        let featureDimension = configuration.model.featureDimension
        guard let bank = contents["memory_bank"], bank.dtype == .f32, bank.shape.count == 2, bank.shape[0] >= 1 else {
            throw invalid("has no float32 [N, D] memory_bank tensor")
        }
        guard bank.shape[1] == featureDimension else {
            throw invalid("has a memory_bank of shape \(bank.shape), but its configuration has feature dimension \(featureDimension)")
        }

        var modelState: [String: SafetensorsTensor] = [:]
        var momentum: [String: SafetensorsTensor] = [:]
        for (name, tensor) in contents.tensors {
            if name.hasPrefix("model.") {
                modelState[String(name.dropFirst("model.".count))] = tensor
            } else if name.hasPrefix("optimizer.momentum.") {
                guard tensor.dtype == .f32 else {
                    throw invalid("contains \(name) of dtype \(tensor.dtype.rawValue), but momentum buffers are F32")
                }
                momentum[String(name.dropFirst("optimizer.momentum.".count))] = tensor
            }
        }
        try checkModelShapes(modelState, configuration: configuration.model, path: path)

        let randomState = contents["rng.cpu"]
        if let randomState, randomState.dtype != .u8 || randomState.shape.count != 1 {
            throw invalid("has an rng.cpu tensor of dtype \(randomState.dtype.rawValue) and shape \(randomState.shape), but a generator state is a U8 vector")
        }

        return Checkpoint(configuration: configuration, epochsDone: epochs, stepsDone: steps,
                          normalizationConstant: z, classNames: classNames, modelState: modelState,
                          momentumBuffers: momentum, memoryBank: bank, cpuRandomState: randomState,
                          stepInEpoch: stepInEpoch, epochLossSum: epochLossSum, epochImageCount: epochImageCount,
                          worldSize: worldSize, trainingImages: metadata["training_images"])
    }

    private static func checkChecksum(_ contents: SafetensorsContents, path: String) throws {
        guard let stored = contents.metadata[checksumKey] else {
            throw CheckpointError(path: path, problem: "has no \(checksumKey) checksum in its metadata, so its contents cannot be verified; it was written by an older npid or its header is damaged, so use another checkpoint")
        }
        let tensors = contents.order.map { contents.tensors[$0]! }
        let computed = hexadecimal(checksum(tensors: tensors, metadata: contents.metadata))
        guard stored == computed else {
            throw CheckpointError(path: path, problem: "is damaged: its contents have CRC-32C \(computed), but its metadata records \(stored); use another checkpoint of the run")
        }
    }

    /// Checks that the partial-epoch counters agree with each other: every step saw between
    /// one and `batchSize` images, and an epoch boundary has no partial loss.
    private static func checkPartialEpoch(stepInEpoch: Int, imageCount: Int, lossSum: Double, stepsDone: Int,
                                          batchSize: Int, path: String) throws {
        let (maximumImages, overflow) = stepInEpoch.multipliedReportingOverflow(by: batchSize)
        let consistent = stepInEpoch <= stepsDone
            && imageCount >= stepInEpoch
            && (overflow || imageCount <= maximumImages)
            && (stepInEpoch > 0 || lossSum == 0)
        guard consistent else {
            throw CheckpointError(path: path, problem: "has inconsistent progress counters (steps_done \(stepsDone), step_in_epoch \(stepInEpoch), epoch_image_count \(imageCount), epoch_loss_sum \(lossSum)) for batch size \(batchSize)")
        }
    }

    /// Checks the shapes of the stem convolution, of the last 3×3 convolution (the largest
    /// tensor of every supported ResNet) and of the projection against the configuration.
    /// Because those tensors are in the file, the network built from the configuration then
    /// needs at most a small multiple of the file's size, whatever width the metadata claims.
    static func checkModelShapes(_ state: [String: SafetensorsTensor], configuration: ModelConfiguration,
                                 path: String) throws {
        func expect(_ name: String, _ shape: [Int]) throws {
            guard let tensor = state[name] else {
                throw CheckpointError(path: path, problem: "has no tensor model.\(name), which a \(configuration.architecture.rawValue) network needs")
            }
            guard tensor.shape == shape else {
                throw CheckpointError(path: path, problem: "contains model.\(name) with shape \(tensor.shape), but its configuration (\(configuration.architecture.rawValue), width \(configuration.width), feature dimension \(configuration.featureDimension)) needs \(shape)")
            }
        }

        let width = configuration.width
        let stemKernel = configuration.stem == .cifar ? 3 : 7
        // The stem is checked first: once it matches, `width` is bounded by the file size,
        // so the products below cannot overflow.
        try expect("conv1.weight", [width, 3, stemKernel, stemKernel])
        let lastStageWidth = width * 8
        let lastBlock = configuration.architecture.blockCounts[3] - 1
        try expect("layer4.\(lastBlock).conv2.weight", [lastStageWidth, lastStageWidth, 3, 3])
        let featureChannels = configuration.architecture.usesBottleneck ? lastStageWidth * 4 : lastStageWidth
        try expect("fc.weight", [configuration.featureDimension, featureChannels])
    }

    /// Checks, before anything is copied, that this checkpoint can continue training `model`
    /// on `trainCount` images (nil leaves that check out) with `stepsPerEpoch` steps per epoch:
    /// every network tensor, the momentum buffers, the generator state and the position in the epoch.
    func checkResumable(into model: ResNet, stepsPerEpoch: Int, trainCount: Int? = nil, path: String) throws {
        try model.checkLoadable(modelState, from: path)

        var parameterShapes: [String: [Int]] = [:]
        for entry in model.state where entry.isParameter {
            parameterShapes[entry.name] = entry.tensor.shape
        }
        for name in momentumBuffers.keys.sorted() {
            let buffer = momentumBuffers[name]!
            guard let shape = parameterShapes[name] else {
                throw CheckpointError(path: path, problem: "contains optimizer.momentum.\(name), but the network has no parameter \(name)")
            }
            guard buffer.shape == shape else {
                throw CheckpointError(path: path, problem: "contains optimizer.momentum.\(name) with shape \(buffer.shape), but the parameter has shape \(shape)")
            }
        }

        if let cpuRandomState {
            let expected = try Torch.cpuRandomState().shape
            guard cpuRandomState.shape == expected else {
                throw CheckpointError(path: path, problem: "has an rng.cpu generator state of shape \(cpuRandomState.shape), but libtorch's CPU generator needs \(expected)")
            }
        }
        guard stepInEpoch <= stepsPerEpoch || worldSize > 1 else {
            throw CheckpointError(path: path, problem: "stopped after step \(stepInEpoch) of an epoch, but an epoch here has \(stepsPerEpoch) steps")
        }
        // A run continues at image epochImageCount of the epoch's order, with any number of ranks.
        if let trainCount, stepInEpoch > 0, epochImageCount > trainCount {
            throw CheckpointError(path: path, problem: "stopped after \(counted(epochImageCount, "image")) of an epoch, but an epoch here has \(counted(trainCount, "image"))")
        }
    }
}

extension Checkpoint {
    /// Checks that `classNames` are the classes the run trained on. Checkpoints written
    /// before class names were saved have none and pass.
    public func checkClassNames(_ classNames: [String], path: String) throws {
        let saved = self.classNames
        guard saved.isEmpty || saved == classNames else {
            // Naming the classes that differ finds the odd folder even among a thousand classes.
            let onlySaved = saved.filter { !classNames.contains($0) }
            let onlyData = classNames.filter { !saved.contains($0) }
            var difference = "the classes are in another order"
            if !onlySaved.isEmpty || !onlyData.isEmpty {
                let list = { (names: [String]) in names.prefix(5).joined(separator: ", ") + (names.count > 5 ? ", ..." : "") }
                var sides: [String] = []
                if !onlySaved.isEmpty {
                    sides.append("only the checkpoint has \(list(onlySaved))")
                }
                if !onlyData.isEmpty {
                    sides.append("only the data has \(list(onlyData))")
                }
                difference = sides.joined(separator: " and ")
            }
            throw UsageError("checkpoint \(path) was trained on classes \(saved.prefix(5).joined(separator: ", "))\(saved.count > 5 ? ", ..." : "") (\(saved.count) in all), but the data has \(classNames.prefix(5).joined(separator: ", "))\(classNames.count > 5 ? ", ..." : "") (\(classNames.count)); \(difference); pass the data folder the run trained on")
        }
    }
}
