/// An integer pixel rectangle inside an image.
struct PixelRegion: Equatable, Sendable {
    var x: Int
    var y: Int
    var width: Int
    var height: Int
}

/// Pixel operations behind `TrainAugmentation` and `PlainTransform`.
///
/// Working images are Float RGB, interleaved (HWC), with values in [0, 1]. The colour operations follow
/// torchvision's tensor implementations of ColorJitter and Grayscale and clamp to [0, 1] after each one.
enum ImageOps {
    static let lumaWeights: (red: Float, green: Float, blue: Float) = (0.299, 0.587, 0.114)

    // MARK: Resampling

    /// Resamples `region` of `image` as if it were resized to `scaledWidth` × `scaledHeight` and then the
    /// `size` × `size` window at (`offsetX`, `offsetY`) were cut out of the result.
    ///
    /// The filter is Pillow's bilinear one: a triangle over pixel centres at half-integer positions, widened
    /// by the scale factor when shrinking so that it averages (antialiases), and renormalised where it
    /// leaves the region. For enlargement this equals bilinear interpolation with edge clamping.
    /// Writes `size * size * 3` floats in [0, 1] to `output`.
    static func resample(_ image: RGBImage, region: PixelRegion, scaledWidth: Int, scaledHeight: Int,
                         offsetX: Int, offsetY: Int, size: Int, into output: UnsafeMutablePointer<Float>) {
        precondition(region.x >= 0 && region.y >= 0 && region.width > 0 && region.height > 0
                     && region.x + region.width <= image.width && region.y + region.height <= image.height,
                     "resample region \(region) lies outside the \(image.width)x\(image.height) image")
        let tapsX = FilterTaps.maxCount(inputLength: region.width, scaledLength: scaledWidth)
        let tapsY = FilterTaps.maxCount(inputLength: region.height, scaledLength: scaledHeight)

        withUnsafeTemporaryAllocation(of: Int.self, capacity: 4 * size) { bounds in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: size * (tapsX + tapsY)) { weights in
                let columns = FilterTaps(starts: bounds.baseAddress!, counts: bounds.baseAddress! + size,
                                         weights: weights.baseAddress!, stride: tapsX)
                let rows = FilterTaps(starts: bounds.baseAddress! + 2 * size, counts: bounds.baseAddress! + 3 * size,
                                      weights: weights.baseAddress! + size * tapsX, stride: tapsY)
                columns.compute(inputLength: region.width, scaledLength: scaledWidth, offset: offsetX, count: size)
                rows.compute(inputLength: region.height, scaledLength: scaledHeight, offset: offsetY, count: size)

                // Only the region rows that some output row reads go through the horizontal pass.
                let firstRow = rows.starts[0]
                let rowCount = rows.starts[size - 1] + rows.counts[size - 1] - firstRow
                withUnsafeTemporaryAllocation(of: Float.self, capacity: rowCount * size * 3) { intermediate in
                    resampleRows(image, region: region, firstRow: firstRow, rowCount: rowCount,
                                 columns: columns, size: size, into: intermediate.baseAddress!)
                    resampleColumns(intermediate.baseAddress!, firstRow: firstRow, rows: rows,
                                    size: size, into: output)
                }
            }
        }
    }

    /// Horizontal pass: region rows firstRow..<firstRow+rowCount, each reduced to `size` pixels, scaled to [0, 1].
    private static func resampleRows(_ image: RGBImage, region: PixelRegion, firstRow: Int, rowCount: Int,
                                     columns: FilterTaps, size: Int, into output: UnsafeMutablePointer<Float>) {
        image.pixels.withUnsafeBufferPointer { pixels in
            let source = pixels.baseAddress!
            for row in 0..<rowCount {
                let sourceRow = source + ((region.y + firstRow + row) * image.width + region.x) * 3
                let outputRow = output + row * size * 3
                for column in 0..<size {
                    let start = columns.starts[column]
                    let weights = columns.weights + column * columns.stride
                    var red: Float = 0
                    var green: Float = 0
                    var blue: Float = 0
                    for tap in 0..<columns.counts[column] {
                        let pixel = sourceRow + (start + tap) * 3
                        let weight = weights[tap]
                        red += weight * Float(pixel[0])
                        green += weight * Float(pixel[1])
                        blue += weight * Float(pixel[2])
                    }
                    outputRow[column * 3] = red / 255
                    outputRow[column * 3 + 1] = green / 255
                    outputRow[column * 3 + 2] = blue / 255
                }
            }
        }
    }

    /// Vertical pass over the output of `resampleRows`; clamps because the sums can overshoot by rounding.
    private static func resampleColumns(_ input: UnsafeMutablePointer<Float>, firstRow: Int, rows: FilterTaps,
                                        size: Int, into output: UnsafeMutablePointer<Float>) {
        let rowLength = size * 3
        for row in 0..<size {
            let start = rows.starts[row] - firstRow
            let weights = rows.weights + row * rows.stride
            let outputRow = output + row * rowLength
            for element in 0..<rowLength {
                outputRow[element] = 0
            }
            for tap in 0..<rows.counts[row] {
                let inputRow = input + (start + tap) * rowLength
                let weight = weights[tap]
                for element in 0..<rowLength {
                    outputRow[element] += weight * inputRow[element]
                }
            }
            for element in 0..<rowLength {
                outputRow[element] = clampUnit(outputRow[element])
            }
        }
    }

    /// The input pixels and weights of a one-dimensional resize, stored in caller-provided buffers.
    struct FilterTaps {
        let starts: UnsafeMutablePointer<Int>
        let counts: UnsafeMutablePointer<Int>
        let weights: UnsafeMutablePointer<Float>
        /// Weights per output pixel in `weights`.
        let stride: Int

        /// Returns the maximum taps per output pixel. The triangle covers 2 × max(1, input / output) pixels.
        static func maxCount(inputLength: Int, scaledLength: Int) -> Int {
            let filterScale = max(Double(inputLength) / Double(scaledLength), 1)
            return Int(filterScale.rounded(.up)) * 2 + 1
        }

        /// Fills taps for output pixels offset..<offset+count of a resize from inputLength to scaledLength.
        func compute(inputLength: Int, scaledLength: Int, offset: Int, count: Int) {
            let scale = Double(inputLength) / Double(scaledLength)
            let filterScale = max(scale, 1)
            let support = filterScale
            for output in 0..<count {
                let center = (Double(offset + output) + 0.5) * scale
                let first = max(Int((center - support + 0.5).rounded(.down)), 0)
                let end = min(Int((center + support + 0.5).rounded(.down)), inputLength)
                let tapCount = min(end - first, stride)
                let outputWeights = weights + output * stride

                var total: Double = 0
                for tap in 0..<tapCount {
                    let distance = abs((Double(first + tap) + 0.5 - center) / filterScale)
                    let weight = max(1 - distance, 0)
                    outputWeights[tap] = Float(weight)
                    total += weight
                }
                if total > 0 {
                    for tap in 0..<tapCount {
                        outputWeights[tap] = Float(Double(outputWeights[tap]) / total)
                    }
                }
                starts[output] = first
                counts[output] = tapCount
            }
        }
    }

    // MARK: Colour adjustments

    @inline(__always)
    static func clampUnit(_ value: Float) -> Float {
        min(max(value, 0), 1)
    }

    @inline(__always)
    static func luma(_ red: Float, _ green: Float, _ blue: Float) -> Float {
        lumaWeights.red * red + lumaWeights.green * green + lumaWeights.blue * blue
    }

    /// Multiplies every value by `factor` (torchvision `adjust_brightness`).
    static func adjustBrightness(_ pixels: UnsafeMutableBufferPointer<Float>, factor: Float) {
        for index in pixels.indices {
            pixels[index] = clampUnit(pixels[index] * factor)
        }
    }

    /// Blends towards the mean luma of the whole image (torchvision `adjust_contrast`).
    static func adjustContrast(_ pixels: UnsafeMutableBufferPointer<Float>, factor: Float) {
        let pixelCount = pixels.count / 3
        var total: Float = 0
        for pixel in 0..<pixelCount {
            total += luma(pixels[pixel * 3], pixels[pixel * 3 + 1], pixels[pixel * 3 + 2])
        }
        let blend = (1 - factor) * (total / Float(pixelCount))
        for index in pixels.indices {
            pixels[index] = clampUnit(factor * pixels[index] + blend)
        }
    }

    /// Blends every pixel towards its own luma (torchvision `adjust_saturation`).
    static func adjustSaturation(_ pixels: UnsafeMutableBufferPointer<Float>, factor: Float) {
        for pixel in 0..<(pixels.count / 3) {
            let base = pixel * 3
            let blend = (1 - factor) * luma(pixels[base], pixels[base + 1], pixels[base + 2])
            pixels[base] = clampUnit(factor * pixels[base] + blend)
            pixels[base + 1] = clampUnit(factor * pixels[base + 1] + blend)
            pixels[base + 2] = clampUnit(factor * pixels[base + 2] + blend)
        }
    }

    /// Rotates the HSV hue by `shift` turns (torchvision `adjust_hue`; `shift` is in [-0.5, 0.5]).
    static func adjustHue(_ pixels: UnsafeMutableBufferPointer<Float>, shift: Float) {
        for pixel in 0..<(pixels.count / 3) {
            let base = pixel * 3
            let red = pixels[base]
            let green = pixels[base + 1]
            let blue = pixels[base + 2]
            let value = max(red, green, blue)
            let chroma = value - min(red, green, blue)
            // A grey pixel has no hue, and a hue shift leaves it unchanged.
            if chroma == 0 { continue }
            let saturation = chroma / value

            var sextant: Float
            if value == red {
                sextant = (green - blue) / chroma
            } else if value == green {
                sextant = 2 + (blue - red) / chroma
            } else {
                sextant = 4 + (red - green) / chroma
            }
            var hue = sextant / 6 + shift
            hue -= hue.rounded(.down)

            let scaledHue = hue * 6
            let sector = scaledHue.rounded(.down)
            let fraction = scaledHue - sector
            let low = value * (1 - saturation)
            let falling = value * (1 - saturation * fraction)
            let rising = value * (1 - saturation * (1 - fraction))
            let rgb: (Float, Float, Float)
            switch Int(sector) % 6 {
            case 0: rgb = (value, rising, low)
            case 1: rgb = (falling, value, low)
            case 2: rgb = (low, value, rising)
            case 3: rgb = (low, falling, value)
            case 4: rgb = (rising, low, value)
            default: rgb = (value, low, falling)
            }
            pixels[base] = clampUnit(rgb.0)
            pixels[base + 1] = clampUnit(rgb.1)
            pixels[base + 2] = clampUnit(rgb.2)
        }
    }

    /// Replaces every pixel by its luma in all three channels (torchvision `Grayscale(3)`).
    static func convertToGrayscale(_ pixels: UnsafeMutableBufferPointer<Float>) {
        for pixel in 0..<(pixels.count / 3) {
            let base = pixel * 3
            let gray = luma(pixels[base], pixels[base + 1], pixels[base + 2])
            pixels[base] = gray
            pixels[base + 1] = gray
            pixels[base + 2] = gray
        }
    }

    // MARK: Output

    /// Copies a `size` × `size` HWC working image to `output` in `layout`, mirroring columns when `flip`.
    static func store(_ pixels: UnsafePointer<Float>, size: Int, flip: Bool,
                      into output: UnsafeMutablePointer<Float>, layout: PixelLayout) {
        let plane = size * size
        for y in 0..<size {
            for x in 0..<size {
                let sourceX = flip ? size - 1 - x : x
                let source = pixels + (y * size + sourceX) * 3
                switch layout {
                case .nchw:
                    let target = y * size + x
                    output[target] = source[0]
                    output[plane + target] = source[1]
                    output[2 * plane + target] = source[2]
                case .nhwc:
                    let target = (y * size + x) * 3
                    output[target] = source[0]
                    output[target + 1] = source[1]
                    output[target + 2] = source[2]
                }
            }
        }
    }

    /// Converts 8-bit pixels to value / 255 in `layout` without resampling.
    static func storeUnscaled(_ image: RGBImage, into output: UnsafeMutablePointer<Float>, layout: PixelLayout) {
        let plane = image.width * image.height
        image.pixels.withUnsafeBufferPointer { pixels in
            for pixel in 0..<plane {
                for channel in 0..<3 {
                    let value = Float(pixels[pixel * 3 + channel]) / 255
                    switch layout {
                    case .nchw: output[channel * plane + pixel] = value
                    case .nhwc: output[pixel * 3 + channel] = value
                    }
                }
            }
        }
    }
}
