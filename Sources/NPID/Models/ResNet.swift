import Torch

/// The ResNet depths swift-npid builds.
public enum Architecture: String, CaseIterable, Sendable, Codable {
    case resnet18, resnet34, resnet50

    var blockCounts: [Int] {
        switch self {
        case .resnet18: return [2, 2, 2, 2]
        case .resnet34, .resnet50: return [3, 4, 6, 3]
        }
    }

    var usesBottleneck: Bool { self == .resnet50 }
}

/// The first layers, chosen by input size.
public enum Stem: String, Sendable, Codable {
    /// 3×3 stride-1 convolution, no max-pool: for 32×32 inputs such as CIFAR.
    case cifar
    /// 7×7 stride-2 convolution and a 3×3 stride-2 max-pool: for 224×224 inputs.
    case imagenet
}

/// The shape of a network: everything needed to rebuild it from a checkpoint.
public struct ModelConfiguration: Sendable, Codable, Equatable {
    public var architecture: Architecture
    public var stem: Stem
    /// Channels of the first stage; 64 is the published ResNet.
    public var width: Int
    /// Dimension D of the L2-normalised feature.
    public var featureDimension: Int

    public init(architecture: Architecture = .resnet18, stem: Stem = .cifar, width: Int = 64,
                featureDimension: Int = 128) {
        self.architecture = architecture
        self.stem = stem
        self.width = width
        self.featureDimension = featureDimension
    }
}

/// A residual stage's unit: two 3×3 convolutions (ResNet-18/34) or 1×1–3×3–1×1 (ResNet-50).
final class ResidualBlock: Layer {
    let convolutions: [Conv2d]
    let norms: [BatchNorm2d]
    let shortcut: (conv: Conv2d, norm: BatchNorm2d)?

    init(inputChannels: Int, planes: Int, stride: Int, bottleneck: Bool, placement: ParameterPlacement) throws {
        let outputChannels = bottleneck ? planes * 4 : planes
        if bottleneck {
            // Stride on the 3×3 convolution, as torchvision's ResNet v1.5.
            convolutions = [
                try Conv2d(inputChannels, planes, kernel: 1, placement: placement),
                try Conv2d(planes, planes, kernel: 3, stride: stride, padding: 1, placement: placement),
                try Conv2d(planes, outputChannels, kernel: 1, placement: placement),
            ]
        } else {
            convolutions = [
                try Conv2d(inputChannels, planes, kernel: 3, stride: stride, padding: 1, placement: placement),
                try Conv2d(planes, planes, kernel: 3, padding: 1, placement: placement),
            ]
        }
        norms = try convolutions.map { try BatchNorm2d($0.weight.shape[0], placement: placement) }
        if stride != 1 || inputChannels != outputChannels {
            shortcut = (try Conv2d(inputChannels, outputChannels, kernel: 1, stride: stride, placement: placement),
                        try BatchNorm2d(outputChannels, placement: placement))
        } else {
            shortcut = nil
        }
    }

    var outputChannels: Int { convolutions.last!.weight.shape[0] }

    func callAsFunction(_ x: Tensor, training: Bool) throws -> Tensor {
        var y = x
        for (i, (conv, norm)) in zip(convolutions, norms).enumerated() {
            y = try norm(conv(y), training: training)
            if i < convolutions.count - 1 {
                try y.reluInPlace()
            }
        }
        let identity = try shortcut.map { try $0.norm($0.conv(x), training: training) } ?? x
        let sum = try y + identity
        try sum.reluInPlace()
        return sum
    }

    func appendState(prefix: String, to state: inout [StateEntry]) {
        for (i, (conv, norm)) in zip(convolutions, norms).enumerated() {
            conv.appendState(prefix: prefix + "conv\(i + 1).", to: &state)
            norm.appendState(prefix: prefix + "bn\(i + 1).", to: &state)
        }
        if let shortcut {
            shortcut.conv.appendState(prefix: prefix + "downsample.0.", to: &state)
            shortcut.norm.appendState(prefix: prefix + "downsample.1.", to: &state)
        }
    }
}

/// ResNet encoder ending in a linear projection to D dimensions and L2 normalisation:
/// images [B, 3, H, W] → features [B, D] of unit length.
public final class ResNet: Layer {
    public let configuration: ModelConfiguration
    let stemConv: Conv2d
    let stemNorm: BatchNorm2d
    let stages: [[ResidualBlock]]
    let projection: Linear

    /// Builds the network with PyTorch's default initialisation, drawn from the placement's
    /// generator, or else libtorch's default CPU generator (seed it first for a reproducible start).
    public init(_ configuration: ModelConfiguration, placement: ParameterPlacement = ParameterPlacement()) throws {
        self.configuration = configuration
        let width = configuration.width
        switch configuration.stem {
        case .cifar:
            stemConv = try Conv2d(3, width, kernel: 3, stride: 1, padding: 1, placement: placement)
        case .imagenet:
            stemConv = try Conv2d(3, width, kernel: 7, stride: 2, padding: 3, placement: placement)
        }
        stemNorm = try BatchNorm2d(width, placement: placement)

        var stages: [[ResidualBlock]] = []
        var channels = width
        for (stage, count) in configuration.architecture.blockCounts.enumerated() {
            var blocks: [ResidualBlock] = []
            for index in 0..<count {
                let block = try ResidualBlock(inputChannels: channels, planes: width << stage,
                                              stride: (index == 0 && stage > 0) ? 2 : 1,
                                              bottleneck: configuration.architecture.usesBottleneck,
                                              placement: placement)
                channels = block.outputChannels
                blocks.append(block)
            }
            stages.append(blocks)
        }
        self.stages = stages
        projection = try Linear(channels, configuration.featureDimension, placement: placement)
    }

    /// Features [B, D] of unit length for images [B, 3, H, W].
    public func callAsFunction(_ images: Tensor, training: Bool) throws -> Tensor {
        try projection(pooledFeatures(images, training: training)).l2Normalized(dim: 1)
    }

    /// The backbone's globally average-pooled output [B, C] for images [B, 3, H, W], before
    /// the projection to D dimensions: what a linear probe reads. C is 8 × width for
    /// ResNet-18/34 and 32 × width for ResNet-50.
    public func pooledFeatures(_ images: Tensor, training: Bool) throws -> Tensor {
        var x = try stemNorm(stemConv(images), training: training)
        try x.reluInPlace()
        if configuration.stem == .imagenet {
            x = try x.maxPool2d(kernel: 3, stride: 2, padding: 1)
        }
        for stage in stages {
            for block in stage {
                x = try block(x, training: training)
            }
        }
        return try x.adaptiveAvgPool2d(height: 1, width: 1).reshaped([x.shape[0], -1])  // [B, C]
    }

    /// Channels C of `pooledFeatures`.
    public var pooledDimension: Int { projection.weight.shape[1] }

    public func appendState(prefix: String, to state: inout [StateEntry]) {
        stemConv.appendState(prefix: prefix + "conv1.", to: &state)
        stemNorm.appendState(prefix: prefix + "bn1.", to: &state)
        for (stage, blocks) in stages.enumerated() {
            for (index, block) in blocks.enumerated() {
                block.appendState(prefix: prefix + "layer\(stage + 1).\(index).", to: &state)
            }
        }
        projection.appendState(prefix: prefix + "fc.", to: &state)
    }

    /// Parameters and buffers in a fixed order, with state-dict names.
    public var state: [StateEntry] {
        var entries: [StateEntry] = []
        appendState(prefix: "", to: &entries)
        return entries
    }

    /// The trainable tensors, in the same order every time.
    public var parameters: [Tensor] {
        state.filter(\.isParameter).map(\.tensor)
    }
}
