import Foundation
import Testing
@testable import NPID
import Torch

/// The encoder: shapes, unit-length output, torchvision state names, parameter counts,
/// batch-norm modes and the state round trip. Networks here are 4 channels wide on 8×8
/// images so the suite stays fast. Weights come from the global generator, so every
/// check must hold for any initialisation.
@Suite struct ResNetModelTests {
    static let smallConfiguration = ModelConfiguration(architecture: .resnet18, stem: .cifar, width: 4,
                                                       featureDimension: 8)

    /// Returns the pixels of images [batch, 3, size, size] built from a fixed formula.
    static func imageValues(batch: Int, size: Int, phase: Double = 0) -> [Double] {
        MethodReference.waves(count: batch * 3 * size * size, phase: phase, step: 0.37)
    }

    static func images(batch: Int, size: Int, phase: Double = 0) throws -> Tensor {
        try MethodTensors.float(imageValues(batch: batch, size: size, phase: phase), shape: [batch, 3, size, size])
    }

    /// Counts the trainable parameters of a torchvision-style ResNet from its definition.
    /// It has a stem convolution and batch norm, then basic blocks (3×3, 3×3) or
    /// bottlenecks (1×1, 3×3, 1×1 with 4× expansion), a 1×1 projection shortcut where the
    /// shape changes, and a final linear layer. Batch norm has a weight and a bias per channel.
    static func parameterCount(blocks: [Int], bottleneck: Bool, stemKernel: Int, width: Int, outputs: Int) -> Int {
        var total = stemKernel * stemKernel * 3 * width + 2 * width
        var channels = width
        for (stage, count) in blocks.enumerated() {
            let planes = width << stage
            for index in 0..<count {
                let stride = (index == 0 && stage > 0) ? 2 : 1
                let out = bottleneck ? 4 * planes : planes
                var block: Int
                if bottleneck {
                    block = channels * planes + 2 * planes + 9 * planes * planes + 2 * planes + planes * out + 2 * out
                } else {
                    block = 9 * channels * planes + 2 * planes + 9 * planes * planes + 2 * planes
                }
                if stride != 1 || channels != out {
                    block += channels * out + 2 * out
                }
                total += block
                channels = out
            }
        }
        return total + channels * outputs + outputs
    }

    static func parameterCount(of model: ResNet) -> Int {
        model.parameters.map(\.count).reduce(0, +)
    }

    @Test func outputRowsHaveUnitLength() throws {
        let model = try ResNet(Self.smallConfiguration)

        let output = try model(Self.images(batch: 3, size: 8), training: true)

        #expect(output.shape == [3, 8])
        let values = try MethodTensors.values(output)
        for b in 0..<3 {
            let norm = MethodReference.norm(MethodReference.row(values, b, columns: 8))
            #expect(abs(norm - 1) <= 1e-5, "row \(b) has norm \(norm)")
        }
    }

    @Test(arguments: [
        ModelConfiguration(architecture: .resnet34, stem: .cifar, width: 4, featureDimension: 6),
        ModelConfiguration(architecture: .resnet50, stem: .imagenet, width: 4, featureDimension: 5),
    ])
    func otherDepthsGiveUnitFeatures(configuration: ModelConfiguration) throws {
        let model = try ResNet(configuration)
        let dimension = configuration.featureDimension

        let output = try model(Self.images(batch: 2, size: 16), training: false)

        #expect(output.shape == [2, dimension])
        let values = try MethodTensors.values(output)
        for b in 0..<2 {
            let norm = MethodReference.norm(MethodReference.row(values, b, columns: dimension))
            #expect(abs(norm - 1) <= 1e-5, "row \(b) has norm \(norm)")
        }
    }

    @Test func stateNamesFollowTorchvision() throws {
        let model = try ResNet(Self.smallConfiguration)
        let batchNorm = ["weight", "bias", "running_mean", "running_var"]
        var expected = ["conv1.weight"] + batchNorm.map { "bn1." + $0 }
        for stage in 1...4 {
            for block in 0...1 {
                let prefix = "layer\(stage).\(block)."
                expected.append(prefix + "conv1.weight")
                expected += batchNorm.map { prefix + "bn1." + $0 }
                expected.append(prefix + "conv2.weight")
                expected += batchNorm.map { prefix + "bn2." + $0 }
                if stage > 1 && block == 0 {
                    expected.append(prefix + "downsample.0.weight")
                    expected += batchNorm.map { prefix + "downsample.1." + $0 }
                }
            }
        }
        expected += ["fc.weight", "fc.bias"]

        let names = model.state.map(\.name)

        #expect(Array(names.prefix(6)) == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean",
                                           "bn1.running_var", "layer1.0.conv1.weight"])
        #expect(names.last == "fc.bias")
        #expect(names == expected)
    }

    @Test func stateShapesFollowWidth() throws {
        let model = try ResNet(Self.smallConfiguration)
        let shapes = Dictionary(uniqueKeysWithValues: model.state.map { ($0.name, $0.tensor.shape) })

        #expect(shapes["conv1.weight"] == [4, 3, 3, 3])
        #expect(shapes["layer2.0.downsample.0.weight"] == [8, 4, 1, 1])
        #expect(shapes["layer4.1.conv2.weight"] == [32, 32, 3, 3])
        #expect(shapes["fc.weight"] == [8, 32])
        #expect(shapes["fc.bias"] == [8])
    }

    @Test func resnet18ParameterCountMatchesPyTorch() throws {
        // torchvision's resnet18 has 11,689,512 parameters with a 7×7 stem and a 1000-way fc.
        // The CIFAR trunk swaps the 7×7×3×64 stem for 3×3×3×64 and drops the fc.
        let torchvisionTotal = 11_689_512
        let cifarTrunk = torchvisionTotal - (512 * 1000 + 1000) - (7 * 7 * 3 * 64 - 3 * 3 * 3 * 64)
        try #require(Self.parameterCount(blocks: [2, 2, 2, 2], bottleneck: false, stemKernel: 7, width: 64,
                                         outputs: 1000) == torchvisionTotal)
        let model = try ResNet(ModelConfiguration(architecture: .resnet18, stem: .cifar, width: 64,
                                                  featureDimension: 128))

        let count = Self.parameterCount(of: model)

        #expect(count == cifarTrunk + 512 * 128 + 128)
        #expect(count == Self.parameterCount(blocks: [2, 2, 2, 2], bottleneck: false, stemKernel: 3, width: 64,
                                             outputs: 128))
    }

    @Test func deeperParameterCountsMatchDefinition() throws {
        // Published torchvision totals anchor the formula before it is applied to narrow networks.
        try #require(Self.parameterCount(blocks: [3, 4, 6, 3], bottleneck: false, stemKernel: 7, width: 64,
                                         outputs: 1000) == 21_797_672)
        try #require(Self.parameterCount(blocks: [3, 4, 6, 3], bottleneck: true, stemKernel: 7, width: 64,
                                         outputs: 1000) == 25_557_032)
        let resnet34 = try ResNet(ModelConfiguration(architecture: .resnet34, stem: .cifar, width: 4, featureDimension: 6))
        let resnet50 = try ResNet(ModelConfiguration(architecture: .resnet50, stem: .imagenet, width: 4, featureDimension: 5))

        #expect(Self.parameterCount(of: resnet34) == Self.parameterCount(blocks: [3, 4, 6, 3], bottleneck: false,
                                                                           stemKernel: 3, width: 4, outputs: 6))
        #expect(Self.parameterCount(of: resnet50) == Self.parameterCount(blocks: [3, 4, 6, 3], bottleneck: true,
                                                                           stemKernel: 7, width: 4, outputs: 5))
    }

    @Test func evaluationModeIsDeterministic() throws {
        let model = try ResNet(Self.smallConfiguration)
        let images = try Self.images(batch: 2, size: 8)

        let first = try model(images, training: false).toArray(of: Float.self)
        let second = try model(images, training: false).toArray(of: Float.self)

        #expect(first == second)
    }

    @Test func evaluationModeKeepsRunningStatistics() throws {
        let model = try ResNet(Self.smallConfiguration)
        let buffers = model.state.filter { !$0.isParameter }
        let before = try buffers.map { try $0.tensor.toArray(of: Float.self) }

        _ = try model(Self.images(batch: 2, size: 8), training: false)

        for (entry, saved) in zip(buffers, before) {
            #expect(try entry.tensor.toArray(of: Float.self) == saved, "\(entry.name) changed in evaluation mode")
        }
    }

    @Test func trainingModeUpdatesRunningStatistics() throws {
        let (batch, size, width) = (2, 8, 4)
        let model = try ResNet(Self.smallConfiguration)
        let state = Dictionary(uniqueKeysWithValues: model.state.map { ($0.name, $0.tensor) })
        let weight = try MethodTensors.values(#require(state["conv1.weight"]))
        let pixels = Self.imageValues(batch: batch, size: size).map { Double(Float($0)) }

        _ = try model(MethodTensors.float(pixels, shape: [batch, 3, size, size]), training: true)

        // The stem is a 3×3 stride-1 convolution with zero padding 1 and no bias. Batch norm
        // then moves its statistics from (0, 1) by momentum 0.1 toward the batch mean and
        // the unbiased batch variance.
        func pixel(_ b: Int, _ c: Int, _ y: Int, _ x: Int) -> Double {
            guard (0..<size).contains(y), (0..<size).contains(x) else { return 0 }
            return pixels[((b * 3 + c) * size + y) * size + x]
        }
        let runningMean = try MethodTensors.values(#require(state["bn1.running_mean"]))
        let runningVar = try MethodTensors.values(#require(state["bn1.running_var"]))
        for o in 0..<width {
            var outputs: [Double] = []
            for b in 0..<batch {
                for y in 0..<size {
                    for x in 0..<size {
                        var sum = 0.0
                        for c in 0..<3 {
                            for ky in 0..<3 {
                                for kx in 0..<3 {
                                    sum += weight[((o * 3 + c) * 3 + ky) * 3 + kx] * pixel(b, c, y + ky - 1, x + kx - 1)
                                }
                            }
                        }
                        outputs.append(sum)
                    }
                }
            }
            let mean = outputs.reduce(0, +) / Double(outputs.count)
            let variance = outputs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(outputs.count - 1)
            #expect(abs(runningMean[o] - 0.1 * mean) <= 1e-5, "channel \(o): running mean \(runningMean[o]), expected \(0.1 * mean)")
            #expect(abs(runningVar[o] - (0.9 + 0.1 * variance)) <= 1e-5,
                    "channel \(o): running variance \(runningVar[o]), expected \(0.9 + 0.1 * variance)")
        }
    }

    @Test func everyParameterGetsGradient() throws {
        let model = try ResNet(Self.smallConfiguration)
        let direction = try MethodTensors.float(MethodReference.waves(count: 8, phase: 0.5), shape: [8, 1])

        try model(Self.images(batch: 3, size: 8), training: true).matmul(direction).sum().backward()

        for entry in model.state where entry.isParameter {
            let gradient = try entry.tensor.grad
            #expect(gradient != nil, "\(entry.name) has no gradient")
        }
    }

    @Test func stateRoundTripReproducesOutputs() throws {
        let source = try ResNet(Self.smallConfiguration)
        // One training pass moves the running statistics away from their initial values.
        _ = try source(Self.images(batch: 4, size: 8, phase: 3), training: true)
        let target = try ResNet(Self.smallConfiguration)
        let images = try Self.images(batch: 2, size: 8)
        let expected = try source(images, training: false).toArray(of: Float.self)
        try #require(try target(images, training: false).toArray(of: Float.self) != expected)

        try target.load(source.stateEntries(), from: "in-memory state")

        #expect(try target(images, training: false).toArray(of: Float.self) == expected)
    }

    @Test func loadRejectsOtherWidth() throws {
        let wide = try ResNet(ModelConfiguration(architecture: .resnet18, stem: .cifar, width: 8, featureDimension: 8))
        let narrow = try ResNet(Self.smallConfiguration)

        #expect(throws: CheckpointError.self) {
            try narrow.load(wide.stateEntries(), from: "wide.safetensors")
        }
    }
}
