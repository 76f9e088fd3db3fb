import Torch

/// A named tensor of a model's state: a trainable parameter or a buffer (batch-norm
/// running statistics). Names follow PyTorch's state-dict convention (`layer1.0.conv1.weight`).
public struct StateEntry {
    public let name: String
    public let tensor: Tensor
    public let isParameter: Bool
}

/// A part of a network that owns tensors.
public protocol Layer: AnyObject {
    /// Appends this layer's parameters and buffers, names prefixed with `prefix`.
    func appendState(prefix: String, to state: inout [StateEntry])
}

/// Where new parameters go, in which layout, and which generator draws their initial values.
public struct ParameterPlacement: Sendable {
    public var device: Device
    /// 4-d weights use channels-last strides when true (what oneDNN and cuDNN run fastest on).
    public var channelsLast: Bool
    /// The generator of the initial weights; nil draws from libtorch's default CPU generator.
    public var generator: Generator?

    public init(device: Device = .cpu, channelsLast: Bool = false, generator: Generator? = nil) {
        self.device = device
        self.channelsLast = channelsLast
        self.generator = generator
    }

    /// Moves a freshly initialised CPU tensor into place and marks it trainable when asked.
    func place(_ tensor: Tensor, trainable: Bool) throws -> Tensor {
        var placed = try tensor.to(device: device)
        if channelsLast && placed.rank == 4 {
            placed = try placed.contiguous(.channelsLast)
        }
        if trainable {
            try placed.requiringGrad()
        }
        return placed
    }
}

/// Uniform samples in [-bound, bound] on the CPU, from `generator` or else libtorch's default generator.
func uniform(_ shape: [Int], bound: Double, generator: Generator?) throws -> Tensor {
    let unit = try generator.map { try Tensor.rand(shape, generator: $0) } ?? Tensor.rand(shape)
    return try unit * (2 * bound) - bound
}

/// 2-d convolution without bias (every convolution of a ResNet is followed by batch norm).
///
/// Initialised as PyTorch's `nn.Conv2d` default (Kaiming uniform with a = √5), which
/// amounts to uniform in ±1/√fan_in.
public final class Conv2d: Layer {
    public let weight: Tensor
    public let stride: Int
    public let padding: Int

    public init(_ inputChannels: Int, _ outputChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                placement: ParameterPlacement) throws {
        let fanIn = Double(inputChannels * kernel * kernel)
        let initial = try uniform([outputChannels, inputChannels, kernel, kernel], bound: 1 / fanIn.squareRoot(),
                                  generator: placement.generator)
        weight = try placement.place(initial, trainable: true)
        self.stride = stride
        self.padding = padding
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try x.conv2d(weight: weight, stride: stride, padding: padding)
    }

    public func appendState(prefix: String, to state: inout [StateEntry]) {
        state.append(StateEntry(name: prefix + "weight", tensor: weight, isParameter: true))
    }
}

/// Batch normalisation over channels, PyTorch's defaults (momentum 0.1, ε 1e-5).
public final class BatchNorm2d: Layer {
    public let weight: Tensor
    public let bias: Tensor
    public let runningMean: Tensor
    public let runningVar: Tensor

    public init(_ channels: Int, placement: ParameterPlacement) throws {
        weight = try placement.place(Tensor.full([channels], 1), trainable: true)
        bias = try placement.place(Tensor.zeros([channels]), trainable: true)
        runningMean = try placement.place(Tensor.zeros([channels]), trainable: false)
        runningVar = try placement.place(Tensor.full([channels], 1), trainable: false)
    }

    /// When set, training batches are normalised with the statistics of every rank's batch
    /// together (synchronised batch norm); nil uses this process's batch alone.
    public var synchronizedGroup: ProcessGroup?

    public func callAsFunction(_ x: Tensor, training: Bool) throws -> Tensor {
        if training, let group = synchronizedGroup {
            return try synchronizedBatchNorm(x, group: group)
        }
        if training && x.shape[0] * x.shape[2] * x.shape[3] == 1 {
            // One value per channel has no variance, and libtorch would write n / (n - 1) = 1 / 0
            // into the running variance, so such a batch (one image whose map is 1 x 1) leaves the
            // running statistics as they are. PyTorch raises an error here instead.
            return try x.batchNorm(weight: weight, bias: bias, runningMean: runningMean.clone(),
                                   runningVar: runningVar.clone(), training: true)
        }
        return try x.batchNorm(weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                               training: training)
    }

    public func appendState(prefix: String, to state: inout [StateEntry]) {
        state.append(StateEntry(name: prefix + "weight", tensor: weight, isParameter: true))
        state.append(StateEntry(name: prefix + "bias", tensor: bias, isParameter: true))
        state.append(StateEntry(name: prefix + "running_mean", tensor: runningMean, isParameter: false))
        state.append(StateEntry(name: prefix + "running_var", tensor: runningVar, isParameter: false))
    }
}

/// Fully connected layer, initialised as PyTorch's `nn.Linear` (uniform in ±1/√fan_in).
public final class Linear: Layer {
    public let weight: Tensor
    public let bias: Tensor

    public init(_ inputFeatures: Int, _ outputFeatures: Int, placement: ParameterPlacement) throws {
        let bound = 1 / Double(inputFeatures).squareRoot()
        weight = try placement.place(uniform([outputFeatures, inputFeatures], bound: bound, generator: placement.generator), trainable: true)
        bias = try placement.place(uniform([outputFeatures], bound: bound, generator: placement.generator), trainable: true)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try x.linear(weight: weight, bias: bias)
    }

    public func appendState(prefix: String, to state: inout [StateEntry]) {
        state.append(StateEntry(name: prefix + "weight", tensor: weight, isParameter: true))
        state.append(StateEntry(name: prefix + "bias", tensor: bias, isParameter: true))
    }
}
