import Foundation
import Testing
@testable import NPID

/// Runs `body` on a fresh float buffer of `count` elements and returns its contents.
private func withOutput(count: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
    var output = [Float](repeating: -1, count: count)
    output.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    return output
}

/// Applies an ImageOps colour operation to the given HWC pixels and returns the result.
private func adjusted(_ pixels: [Float], _ operation: (UnsafeMutableBufferPointer<Float>) -> Void) -> [Float] {
    var pixels = pixels
    pixels.withUnsafeMutableBufferPointer { operation($0) }
    return pixels
}

private func expectClose(_ actual: [Float], _ expected: [Float], tolerance: Float = 1e-5,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, sourceLocation: sourceLocation)
    let worst = zip(actual, expected).map { abs($0 - $1) }.max() ?? 0
    #expect(worst <= tolerance, "largest difference \(worst) in \(actual) vs \(expected)",
            sourceLocation: sourceLocation)
}

@Suite struct PlainTransformTests {
    @Test func identityIsExactInBothLayouts() {
        let image = TestImages.noise(width: 32, height: 32, seed: 1)
        let transform = PlainTransform(outputSize: 32)

        let chw = withOutput(count: 3072) { transform.apply(image, into: $0, layout: .nchw) }
        let hwc = withOutput(count: 3072) { transform.apply(image, into: $0, layout: .nhwc) }

        for y in 0..<32 {
            for x in 0..<32 {
                for channel in 0..<3 {
                    let expected = Float(image.pixels[(y * 32 + x) * 3 + channel]) / 255
                    #expect(chw[channel * 1024 + y * 32 + x] == expected)
                    #expect(hwc[(y * 32 + x) * 3 + channel] == expected)
                }
            }
        }
    }

    @Test func wideImageIsCentreCropped() {
        // Height is already the output size, so only the centre crop acts: columns 1 and 2 remain.
        let image = TestImages.noise(width: 4, height: 2, seed: 2)
        let hwc = withOutput(count: 12) { PlainTransform(outputSize: 2).apply(image, into: $0, layout: .nhwc) }

        var expected: [Float] = []
        for y in 0..<2 {
            for x in 1...2 {
                for channel in 0..<3 {
                    expected.append(Float(image.pixels[(y * 4 + x) * 3 + channel]) / 255)
                }
            }
        }
        expectClose(hwc, expected, tolerance: 1e-6)
    }

    @Test func shrinkingUsesTriangleFilter() {
        // Pillow's bilinear reduction of the row 0 0 255 255 to two pixels gives 36.43 and 218.57:
        // the triangle is twice as wide, so output 0 weighs inputs 0, 1, 2 by 0.75, 0.75, 0.25.
        var pixels: [UInt8] = []
        for _ in 0..<4 {
            for value: UInt8 in [0, 0, 255, 255] {
                pixels += [value, value, value]
            }
        }
        let image = RGBImage(width: 4, height: 4, pixels: pixels)
        let hwc = withOutput(count: 12) { PlainTransform(outputSize: 2).apply(image, into: $0, layout: .nhwc) }

        let left: Float = 0.25 * 255 / 1.75 / 255
        let right: Float = 1.5 * 255 / 1.75 / 255
        expectClose(hwc, [left, left, left, right, right, right, left, left, left, right, right, right])
    }

    @Test func scaledSizeKeepsAspectRatio() {
        let transform = PlainTransform(outputSize: 32)
        #expect(transform.scaledSize(width: 64, height: 48) == (42, 32))
        #expect(transform.scaledSize(width: 30, height: 100) == (32, 106))
        #expect(transform.scaledSize(width: 32, height: 32) == (32, 32))
    }
}

@Suite struct ImageOpsTests {
    @Test func bilinearUpsamplesGradient() {
        // 2x2 to 4x4 with pixel centres at half-integers: output centres map to -0.25, 0.25, 0.75, 1.25
        // in input pixel units, so each row reads 0, 0.25, 0.75, 1 of the way from the left to the right pixel.
        let image = RGBImage(width: 2, height: 2, pixels: [0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255])
        let region = PixelRegion(x: 0, y: 0, width: 2, height: 2)
        let hwc = withOutput(count: 48) {
            ImageOps.resample(image, region: region, scaledWidth: 4, scaledHeight: 4,
                              offsetX: 0, offsetY: 0, size: 4, into: $0)
        }

        let row: [Float] = [0, 0.25, 0.75, 1]
        let expected = (0..<4).flatMap { _ in row.flatMap { [$0, $0, $0] } }
        expectClose(hwc, expected)
    }

    @Test func bilinearBlendsVerticallyToo() {
        let image = RGBImage(width: 1, height: 2, pixels: [0, 100, 200, 255, 100, 0])
        let region = PixelRegion(x: 0, y: 0, width: 1, height: 2)
        let hwc = withOutput(count: 12) {
            ImageOps.resample(image, region: region, scaledWidth: 2, scaledHeight: 4,
                              offsetX: 0, offsetY: 0, size: 2, into: $0)
        }
        // Output rows 0 and 1 of the 4-row result: 0 and 0.25 of the way from the top pixel to the bottom one.
        let top: [Float] = [0, 100 / 255, 200 / 255]
        let quarter: [Float] = [63.75 / 255, 100 / 255, 150 / 255]
        expectClose(hwc, top + top + quarter + quarter)
    }

    @Test func cropOfConstantImageStaysConstant() {
        let image = RGBImage(width: 37, height: 23, pixels: (0..<(37 * 23)).flatMap { _ in [UInt8(90), 150, 30] })
        let crops = [PixelRegion(x: 3, y: 5, width: 7, height: 11), PixelRegion(x: 0, y: 0, width: 37, height: 23)]
        for crop in crops {
            for size in [4, 32] {
                let hwc = withOutput(count: size * size * 3) {
                    ImageOps.resample(image, region: crop, scaledWidth: size, scaledHeight: size,
                                      offsetX: 0, offsetY: 0, size: size, into: $0)
                }
                let expected = (0..<(size * size)).flatMap { _ in [Float(90) / 255, Float(150) / 255, Float(30) / 255] }
                expectClose(hwc, expected)
            }
        }
    }

    @Test func brightnessScalesAndClamps() {
        let result = adjusted([0.5, 0.25, 0.9]) { ImageOps.adjustBrightness($0, factor: 1.2) }
        expectClose(result, [0.6, 0.3, 1.0])
    }

    @Test func contrastBlendsTowardMeanLuma() {
        // Mean luma of one black and one white pixel is 0.5.
        let result = adjusted([0, 0, 0, 1, 1, 1]) { ImageOps.adjustContrast($0, factor: 0.5) }
        expectClose(result, [0.25, 0.25, 0.25, 0.75, 0.75, 0.75])
    }

    @Test func saturationZeroGivesLuma() {
        let result = adjusted([1, 0, 0, 0.2, 0.4, 0.6]) { ImageOps.adjustSaturation($0, factor: 0) }
        let secondLuma: Float = 0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6
        expectClose(result, [0.299, 0.299, 0.299, secondLuma, secondLuma, secondLuma])
    }

    @Test func saturationTwoClampsToUnitRange() {
        // Red doubled away from its luma 0.299: 2 - 0.299 clamps to 1, and -0.299 clamps to 0.
        let result = adjusted([1, 0, 0]) { ImageOps.adjustSaturation($0, factor: 2) }
        expectClose(result, [1, 0, 0])
    }

    @Test func hueShiftTurnsRedIntoGreen() {
        let green = adjusted([1, 0, 0]) { ImageOps.adjustHue($0, shift: 1.0 / 3.0) }
        expectClose(green, [0, 1, 0])
        let blue = adjusted([1, 0, 0]) { ImageOps.adjustHue($0, shift: -1.0 / 3.0) }
        expectClose(blue, [0, 0, 1])
    }

    @Test func hueShiftKeepsValueAndSaturation() {
        // Orange (hue 1/12, value 0.8, saturation 0.75) shifted by 1/6 turn has hue 1/4, halfway from
        // yellow to green, so red falls to halfway between the maximum 0.8 and the minimum 0.2.
        let result = adjusted([0.8, 0.5, 0.2]) { ImageOps.adjustHue($0, shift: 1.0 / 6.0) }
        expectClose(result, [0.5, 0.8, 0.2])
    }

    @Test func hueShiftKeepsGreyPixels() {
        let result = adjusted([0.4, 0.4, 0.4, 0, 0, 0]) { ImageOps.adjustHue($0, shift: 0.3) }
        #expect(result == [0.4, 0.4, 0.4, 0, 0, 0])
    }

    @Test func grayscaleUsesLumaWeights() {
        let result = adjusted([1, 0, 0, 0, 1, 0, 0, 0, 1]) { ImageOps.convertToGrayscale($0) }
        expectClose(result, [0.299, 0.299, 0.299, 0.587, 0.587, 0.587, 0.114, 0.114, 0.114])
    }

    @Test func flipMirrorsColumnsInBothLayouts() {
        // 2x2 HWC image with distinct values per channel.
        let pixels: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
        func flipped(_ layout: PixelLayout) -> [Float] {
            withOutput(count: 12) { output in
                pixels.withUnsafeBufferPointer { source in
                    ImageOps.store(source.baseAddress!, size: 2, flip: true, into: output, layout: layout)
                }
            }
        }

        let hwc = flipped(.nhwc)
        #expect(hwc == [4, 5, 6, 1, 2, 3, 10, 11, 12, 7, 8, 9])
        let chw = flipped(.nchw)
        #expect(chw == [4, 1, 10, 7, 5, 2, 11, 8, 6, 3, 12, 9])
    }
}

@Suite struct TrainAugmentationTests {
    /// Makes an augmentation whose crop is always the whole image and whose other steps are off.
    private func fixedAugmentation(flip: Double = 0, grayscale: Double = 0) -> TrainAugmentation {
        TrainAugmentation(outputSize: 32, cropScale: 1...1, cropRatio: 1...1, brightness: 0, contrast: 0,
                          saturation: 0, hue: 0, grayscaleProbability: grayscale, flipProbability: flip)
    }

    private func augment(_ image: RGBImage, _ augmentation: TrainAugmentation = TrainAugmentation(),
                         seed: UInt64 = 7, epoch: Int = 0, index: Int = 0, layout: PixelLayout = .nchw) -> [Float] {
        let size = augmentation.outputSize
        return withOutput(count: size * size * 3) { output in
            var random = SampleRandom.forSample(seed: seed, epoch: epoch, index: index)
            augmentation.apply(image, random: &random, into: output, layout: layout)
        }
    }

    @Test func defaultsMatchReferenceRecipe() {
        let augmentation = TrainAugmentation()
        #expect(augmentation.outputSize == 32)
        #expect(augmentation.cropScale == 0.2...1.0)
        #expect(augmentation.cropRatio == (3.0 / 4.0)...(4.0 / 3.0))
        #expect([augmentation.brightness, augmentation.contrast, augmentation.saturation, augmentation.hue]
                == [0.4, 0.4, 0.4, 0.4])
        #expect(augmentation.grayscaleProbability == 0.2)
        #expect(augmentation.flipProbability == 0.5)
    }

    @Test func disabledStepsGiveIdentity() {
        let image = TestImages.noise(width: 32, height: 32, seed: 3)
        let output = augment(image, fixedAugmentation(), layout: .nhwc)
        #expect(output == image.pixels.map { Float($0) / 255 })
    }

    @Test func certainFlipMirrorsImage() {
        let image = TestImages.noise(width: 32, height: 32, seed: 4)
        let output = augment(image, fixedAugmentation(flip: 1), layout: .nhwc)
        for y in 0..<32 {
            for x in 0..<32 {
                for channel in 0..<3 {
                    let mirrored = Float(image.pixels[(y * 32 + 31 - x) * 3 + channel]) / 255
                    #expect(output[(y * 32 + x) * 3 + channel] == mirrored)
                }
            }
        }
    }

    @Test func sameSampleGivesIdenticalFloats() {
        let image = TestImages.noise(width: 32, height: 32, seed: 5)
        let first = augment(image, seed: 11, epoch: 3, index: 42)
        let second = augment(image, seed: 11, epoch: 3, index: 42)
        #expect(first == second)
        #expect(first != augment(image, seed: 11, epoch: 4, index: 42))
        #expect(first != augment(image, seed: 11, epoch: 3, index: 43))
        #expect(first != augment(image, seed: 12, epoch: 3, index: 42))
    }

    @Test func outputStaysInUnitRange() {
        let image = TestImages.noise(width: 40, height: 28, seed: 6)
        for index in 0..<50 {
            let output = augment(image, index: index)
            #expect(output.min()! >= 0)
            #expect(output.max()! <= 1)
        }
    }

    @Test func grayscaleBranchGivesEqualChannels() {
        let augmentation = TrainAugmentation(grayscaleProbability: 1)
        let image = TestImages.noise(width: 32, height: 32, seed: 7)
        for index in 0..<10 {
            let chw = augment(image, augmentation, index: index)
            for pixel in 0..<1024 {
                #expect(chw[pixel] == chw[1024 + pixel])
                #expect(chw[pixel] == chw[2048 + pixel])
            }
        }
    }

    @Test func layoutsHoldSameValues() {
        let image = TestImages.noise(width: 32, height: 32, seed: 8)
        let chw = augment(image, layout: .nchw)
        let hwc = augment(image, layout: .nhwc)
        for pixel in 0..<1024 {
            for channel in 0..<3 {
                #expect(chw[channel * 1024 + pixel] == hwc[pixel * 3 + channel])
            }
        }
    }

    @Test func largerImagesResizeToOutputSize() {
        let image = TestImages.gradient(width: 96, height: 64)
        let augmentation = TrainAugmentation(outputSize: 24)
        let output = augment(image, augmentation)
        #expect(output.count == 24 * 24 * 3)
        #expect(output.min()! >= 0)
        #expect(output.max()! <= 1)
    }

    @Test func cropsStayInsideImageAndRanges() {
        let augmentation = TrainAugmentation()
        var random = SampleRandom(seed: 9)
        for (width, height) in [(32, 32), (50, 20), (7, 300)] {
            for _ in 0..<500 {
                let crop = augmentation.sampleCrop(width: width, height: height, random: &random)
                #expect(crop.x >= 0)
                #expect(crop.y >= 0)
                #expect(crop.width >= 1)
                #expect(crop.height >= 1)
                #expect(crop.x + crop.width <= width)
                #expect(crop.y + crop.height <= height)
            }
        }
        // On a square image, a random crop covers at most the whole area and at least about 20% of it.
        for _ in 0..<500 {
            let crop = augmentation.sampleCrop(width: 32, height: 32, random: &random)
            let fraction = Double(crop.width * crop.height) / 1024
            #expect(fraction >= 0.15)
            #expect(fraction <= 1)
            let ratio = Double(crop.width) / Double(crop.height)
            #expect(ratio >= 0.6)
            #expect(ratio <= 1.7)
        }
    }

    @Test func impossibleCropFallsBackToCentre() {
        // Every try on a 100x10 image needs a crop taller than 10 pixels, so the centre crop with ratio 4/3 wins.
        var random = SampleRandom(seed: 10)
        let crop = TrainAugmentation().sampleCrop(width: 100, height: 10, random: &random)
        #expect(crop == PixelRegion(x: 43, y: 0, width: 13, height: 10))
    }

    @Test func colourOrderIsAPermutation() {
        let augmentation = TrainAugmentation()
        var orders = Set<[String]>()
        for index in 0..<200 {
            var random = SampleRandom.forSample(seed: 1, epoch: 0, index: index)
            let parameters = augmentation.sampleParameters(width: 32, height: 32, random: &random)
            #expect(Set(parameters.colorOrder) == Set(TrainAugmentation.ColorAdjustment.allCases))
            orders.insert(parameters.colorOrder.map { "\($0)" })
            #expect((0.6...1.4).contains(parameters.brightnessFactor!))
            #expect((-0.4...0.4).contains(parameters.hueShift!))
        }
        // 200 draws of 24 orders leave one out with probability below 1e-3.
        #expect(orders.count == 24)
    }
}

@Suite struct SampleRandomTests {
    @Test func sameSeedGivesSameSequence() {
        var first = SampleRandom(seed: 42)
        var second = SampleRandom(seed: 42)
        var other = SampleRandom(seed: 43)
        let a = (0..<8).map { _ in first.next() }
        #expect(a == (0..<8).map { _ in second.next() })
        #expect(a != (0..<8).map { _ in other.next() })
    }

    @Test func forSampleDependsOnEveryInput() {
        var base = SampleRandom.forSample(seed: 1, epoch: 2, index: 3)
        var sameBase = SampleRandom.forSample(seed: 1, epoch: 2, index: 3)
        let value = base.next()
        #expect(value == sameBase.next())
        var changedSeed = SampleRandom.forSample(seed: 2, epoch: 2, index: 3)
        var changedEpoch = SampleRandom.forSample(seed: 1, epoch: 3, index: 3)
        var changedIndex = SampleRandom.forSample(seed: 1, epoch: 2, index: 4)
        var swapped = SampleRandom.forSample(seed: 1, epoch: 3, index: 2)
        #expect(value != changedSeed.next())
        #expect(value != changedEpoch.next())
        #expect(value != changedIndex.next())
        #expect(value != swapped.next())
    }

    @Test func uniformStaysInRangeWithMeanHalf() {
        var random = SampleRandom(seed: 5)
        var total = 0.0
        for _ in 0..<100_000 {
            let value = random.nextUniform()
            #expect(value >= 0)
            #expect(value < 1)
            total += value
        }
        #expect(abs(total / 100_000 - 0.5) < 0.005)
        for _ in 0..<1000 {
            #expect((-2.0...3.0).contains(random.nextUniform(in: -2...3)))
        }
    }

    @Test func nextIntCoversRangeEvenly() {
        var random = SampleRandom(seed: 6)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 {
            counts[random.nextInt(below: 7)] += 1
        }
        // Each count is binomial with mean 10000 and standard deviation about 93.
        #expect(counts.allSatisfy { abs($0 - 10_000) < 500 })
    }
}
