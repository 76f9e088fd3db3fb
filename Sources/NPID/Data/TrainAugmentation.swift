import Foundation

/// The memory layout of float pixels: channel planes (`nchw`, PyTorch's default) or interleaved (`nhwc`).
public enum PixelLayout: Sendable, Equatable {
    case nchw
    case nhwc
}

/// The training augmentation of the NPID reference code for CIFAR, built from torchvision transforms:
/// RandomResizedCrop(outputSize, scale 0.2...1, ratio 3/4...4/3), ColorJitter(0.4, 0.4, 0.4, 0.4),
/// RandomGrayscale(p 0.2), RandomHorizontalFlip(p 0.5), then ToTensor.
///
/// Like ToTensor, the output is in [0, 1]. No mean/std normalisation is applied.
public struct TrainAugmentation: Sendable {
    /// The side of the square output, in pixels.
    public var outputSize: Int
    /// Range of the crop area as a fraction of the image area.
    public var cropScale: ClosedRange<Double>
    /// Range of the crop aspect ratio (width / height), sampled uniformly in log space.
    public var cropRatio: ClosedRange<Double>
    /// Brightness factors are drawn from [max(0, 1 - brightness), 1 + brightness]; 0 disables.
    public var brightness: Double
    /// Contrast factors are drawn from [max(0, 1 - contrast), 1 + contrast]; 0 disables.
    public var contrast: Double
    /// Saturation factors are drawn from [max(0, 1 - saturation), 1 + saturation]; 0 disables.
    public var saturation: Double
    /// Hue shifts are drawn from [-hue, hue] turns; must be in [0, 0.5]; 0 disables.
    public var hue: Double
    /// Probability of converting the image to grayscale (kept as three equal channels).
    public var grayscaleProbability: Double
    /// Probability of mirroring the image horizontally.
    public var flipProbability: Double

    public init(outputSize: Int = 32,
                cropScale: ClosedRange<Double> = 0.2...1.0,
                cropRatio: ClosedRange<Double> = (3.0 / 4.0)...(4.0 / 3.0),
                brightness: Double = 0.4,
                contrast: Double = 0.4,
                saturation: Double = 0.4,
                hue: Double = 0.4,
                grayscaleProbability: Double = 0.2,
                flipProbability: Double = 0.5) {
        self.outputSize = outputSize
        self.cropScale = cropScale
        self.cropRatio = cropRatio
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue = hue
        self.grayscaleProbability = grayscaleProbability
        self.flipProbability = flipProbability
        validate()
    }

    /// Traps with a message when a field is out of range; the fields are public and may change after init.
    func validate() {
        precondition(outputSize > 0, "TrainAugmentation.outputSize must be positive, got \(outputSize)")
        precondition(cropScale.lowerBound > 0 && cropScale.upperBound <= 1,
                     "TrainAugmentation.cropScale must lie in (0, 1], got \(cropScale)")
        precondition(cropRatio.lowerBound > 0, "TrainAugmentation.cropRatio must be positive, got \(cropRatio)")
        precondition(brightness >= 0 && contrast >= 0 && saturation >= 0,
                     "TrainAugmentation brightness, contrast and saturation must not be negative")
        precondition((0...0.5).contains(hue), "TrainAugmentation.hue must lie in [0, 0.5], got \(hue)")
        precondition((0...1).contains(grayscaleProbability) && (0...1).contains(flipProbability),
                     "TrainAugmentation probabilities must lie in [0, 1]")
    }

    /// Augments one image and writes `outputSize * outputSize * 3` floats in [0, 1] to `output`,
    /// as CHW for `.nchw` or HWC for `.nhwc`.
    public func apply(_ image: RGBImage, random: inout SampleRandom,
                      into output: UnsafeMutablePointer<Float>, layout: PixelLayout) {
        validate()
        let parameters = sampleParameters(width: image.width, height: image.height, random: &random)
        let size = outputSize

        withUnsafeTemporaryAllocation(of: Float.self, capacity: size * size * 3) { pixels in
            ImageOps.resample(image, region: parameters.crop, scaledWidth: size, scaledHeight: size,
                              offsetX: 0, offsetY: 0, size: size, into: pixels.baseAddress!)
            for adjustment in parameters.colorOrder {
                switch adjustment {
                case .brightness:
                    if let factor = parameters.brightnessFactor {
                        ImageOps.adjustBrightness(pixels, factor: factor)
                    }
                case .contrast:
                    if let factor = parameters.contrastFactor {
                        ImageOps.adjustContrast(pixels, factor: factor)
                    }
                case .saturation:
                    if let factor = parameters.saturationFactor {
                        ImageOps.adjustSaturation(pixels, factor: factor)
                    }
                case .hue:
                    if let shift = parameters.hueShift {
                        ImageOps.adjustHue(pixels, shift: shift)
                    }
                }
            }
            if parameters.grayscale {
                ImageOps.convertToGrayscale(pixels)
            }
            ImageOps.store(pixels.baseAddress!, size: size, flip: parameters.flip, into: output, layout: layout)
        }
    }

    // MARK: Random parameters

    enum ColorAdjustment: CaseIterable {
        case brightness, contrast, saturation, hue
    }

    /// The random choices for one image; a factor is nil when its jitter strength is 0.
    struct Parameters {
        var crop: PixelRegion
        var colorOrder: [ColorAdjustment]
        var brightnessFactor: Float?
        var contrastFactor: Float?
        var saturationFactor: Float?
        var hueShift: Float?
        var grayscale: Bool
        var flip: Bool
    }

    /// Draws all random choices, always in this order: crop, colour order, the four jitter factors,
    /// grayscale, flip.
    func sampleParameters(width: Int, height: Int, random: inout SampleRandom) -> Parameters {
        let crop = sampleCrop(width: width, height: height, random: &random)

        var colorOrder = ColorAdjustment.allCases
        for index in stride(from: colorOrder.count - 1, to: 0, by: -1) {
            colorOrder.swapAt(index, random.nextInt(below: index + 1))
        }
        let brightnessFactor = Self.sampleFactor(strength: brightness, random: &random)
        let contrastFactor = Self.sampleFactor(strength: contrast, random: &random)
        let saturationFactor = Self.sampleFactor(strength: saturation, random: &random)
        let hueShift = hue > 0 ? Float(random.nextUniform(in: -hue...hue)) : nil

        let grayscale = random.nextUniform() < grayscaleProbability
        let flip = random.nextUniform() < flipProbability
        return Parameters(crop: crop, colorOrder: colorOrder, brightnessFactor: brightnessFactor,
                          contrastFactor: contrastFactor, saturationFactor: saturationFactor,
                          hueShift: hueShift, grayscale: grayscale, flip: flip)
    }

    private static func sampleFactor(strength: Double, random: inout SampleRandom) -> Float? {
        guard strength > 0 else { return nil }
        return Float(random.nextUniform(in: max(0, 1 - strength)...(1 + strength)))
    }

    /// torchvision's `RandomResizedCrop.get_params`: up to 10 tries with a random area and log-uniform
    /// aspect ratio, then a centre crop with the ratio clamped into `cropRatio`.
    /// Sizes round half to even, as Python's `round` does.
    func sampleCrop(width: Int, height: Int, random: inout SampleRandom) -> PixelRegion {
        let area = Double(width * height)
        let logRatio = log(cropRatio.lowerBound)...log(cropRatio.upperBound)
        for _ in 0..<10 {
            let targetArea = area * random.nextUniform(in: cropScale)
            let aspectRatio = exp(random.nextUniform(in: logRatio))
            let cropWidth = Int((targetArea * aspectRatio).squareRoot().rounded(.toNearestOrEven))
            let cropHeight = Int((targetArea / aspectRatio).squareRoot().rounded(.toNearestOrEven))
            if cropWidth > 0 && cropWidth <= width && cropHeight > 0 && cropHeight <= height {
                let top = random.nextInt(below: height - cropHeight + 1)
                let left = random.nextInt(below: width - cropWidth + 1)
                return PixelRegion(x: left, y: top, width: cropWidth, height: cropHeight)
            }
        }
        return centerCrop(width: width, height: height)
    }

    func centerCrop(width: Int, height: Int) -> PixelRegion {
        let inputRatio = Double(width) / Double(height)
        var cropWidth = width
        var cropHeight = height
        if inputRatio < cropRatio.lowerBound {
            cropHeight = Int((Double(width) / cropRatio.lowerBound).rounded(.toNearestOrEven))
        } else if inputRatio > cropRatio.upperBound {
            cropWidth = Int((Double(height) * cropRatio.upperBound).rounded(.toNearestOrEven))
        }
        cropWidth = min(max(cropWidth, 1), width)
        cropHeight = min(max(cropHeight, 1), height)
        return PixelRegion(x: (width - cropWidth) / 2, y: (height - cropHeight) / 2,
                           width: cropWidth, height: cropHeight)
    }
}
