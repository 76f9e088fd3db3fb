/// The evaluation transform: torchvision's Resize(outputSize) (shorter side), CenterCrop(outputSize), ToTensor.
///
/// An image that already is `outputSize` × `outputSize` is converted exactly to value / 255.
public struct PlainTransform: Sendable {
    /// The side of the square output, in pixels.
    public var outputSize: Int

    public init(outputSize: Int = 32) {
        precondition(outputSize > 0, "PlainTransform.outputSize must be positive, got \(outputSize)")
        self.outputSize = outputSize
    }

    /// Writes `outputSize * outputSize * 3` floats in [0, 1] to `output`, as CHW for `.nchw` or HWC for `.nhwc`.
    public func apply(_ image: RGBImage, into output: UnsafeMutablePointer<Float>, layout: PixelLayout) {
        let size = outputSize
        precondition(size > 0, "PlainTransform.outputSize must be positive, got \(size)")
        if image.width == size && image.height == size {
            ImageOps.storeUnscaled(image, into: output, layout: layout)
            return
        }

        let scaled = scaledSize(width: image.width, height: image.height)
        // torchvision's CenterCrop rounds the offset half to even with Python's round.
        let offsetX = Int((Double(scaled.width - size) / 2).rounded(.toNearestOrEven))
        let offsetY = Int((Double(scaled.height - size) / 2).rounded(.toNearestOrEven))
        let whole = PixelRegion(x: 0, y: 0, width: image.width, height: image.height)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: size * size * 3) { pixels in
            ImageOps.resample(image, region: whole, scaledWidth: scaled.width, scaledHeight: scaled.height,
                              offsetX: offsetX, offsetY: offsetY, size: size, into: pixels.baseAddress!)
            ImageOps.store(pixels.baseAddress!, size: size, flip: false, into: output, layout: layout)
        }
    }

    /// Returns the size after resizing the shorter side to `outputSize`, truncating the longer side like torchvision.
    func scaledSize(width: Int, height: Int) -> (width: Int, height: Int) {
        if width <= height {
            return (outputSize, max(outputSize, outputSize * height / width))
        }
        return (max(outputSize, outputSize * width / height), outputSize)
    }
}

/// The per-image transform that `BatchLoader` applies.
public enum ImageTransform: Sendable {
    case train(TrainAugmentation)
    case plain(PlainTransform)

    /// The side of the square output, in pixels.
    public var outputSize: Int {
        switch self {
        case .train(let augmentation): return augmentation.outputSize
        case .plain(let transform): return transform.outputSize
        }
    }

    /// Transforms the image with dataset index `index`; the randomness comes from
    /// `SampleRandom.forSample(seed:epoch:index:)`, so the result does not depend on the calling thread.
    public func apply(_ image: RGBImage, seed: UInt64, epoch: Int, index: Int,
                      into output: UnsafeMutablePointer<Float>, layout: PixelLayout) {
        switch self {
        case .train(let augmentation):
            var random = SampleRandom.forSample(seed: seed, epoch: epoch, index: index)
            augmentation.apply(image, random: &random, into: output, layout: layout)
        case .plain(let transform):
            transform.apply(image, into: output, layout: layout)
        }
    }
}
