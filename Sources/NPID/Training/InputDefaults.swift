import Torch

extension TrainingConfiguration {
    /// The input size for datasets of large images: ImageNet's 224 × 224.
    public static let largeImageSize = 224

    /// Datasets whose median shorter image side is at most this many pixels train at `defaults.imageSize`
    /// (CIFAR's 32); larger ones at `largeImageSize`.
    public static let smallImageSide = 64

    /// Returns the default input size for images of the given sizes, judged by the median shorter side,
    /// so that a few odd images do not change the choice.
    public static func defaultImageSize(for sizes: [ImageSize]) -> Int {
        let sides = sizes.map { min($0.width, $0.height) }.sorted()
        guard !sides.isEmpty, sides[sides.count / 2] > smallImageSide else {
            return defaults.imageSize
        }
        return largeImageSize
    }
}

extension Stem {
    /// Returns the stem for square inputs of `imageSize` pixels: the ImageNet stem divides the
    /// resolution by 4 before the first stage, which inputs larger than `smallImageSide` can afford.
    public static func defaultStem(forImageSize imageSize: Int) -> Stem {
        imageSize > TrainingConfiguration.smallImageSide ? .imagenet : .cifar
    }
}

/// The default split of CPU threads between libtorch and the batch loader.
///
/// On CPU the network is the bottleneck, so libtorch keeps its default of one thread per core and one
/// loader worker prepares batches ahead. The worker needs little CPU time, because it builds batches
/// hundreds of times faster than a ResNet-18 trains on them (measured on 2 cores with `npid bench --loader`
/// and `npid train --bench-steps`), and it sleeps while its prefetched batches wait. On CUDA the network runs on the GPU, so the cores go to the loader: one worker per core
/// but one, which is left to the single libtorch thread that feeds the GPU.
public enum ThreadPlan {
    /// Returns libtorch's intra-op thread count (nil keeps libtorch's default) and the loader's workers.
    public static func defaults(device: Device, coreCount: Int) -> (threads: Int?, workers: Int) {
        switch device {
        case .cpu:
            return (threads: nil, workers: 1)
        case .cuda:
            return (threads: 1, workers: max(1, coreCount - 1))
        }
    }
}
