import CImageCodecs
import Foundation
import Testing
@testable import NPID

@Suite struct ImageDecoderTests {
    // MARK: JPEG

    @Test func jpegRoundTripWithinTolerance() throws {
        let original = TestImages.gradient(width: 24, height: 16)
        let jpeg = TestImages.encodeJPEG(original, quality: 95)
        let decoded = try ImageDecoder.decode(bytes: jpeg, path: "gradient.jpg")

        #expect(decoded.width == 24)
        #expect(decoded.height == 16)
        let maxError = zip(decoded.pixels, original.pixels).map { abs(Int($0) - Int($1)) }.max()!
        #expect(maxError <= 6)
    }

    @Test func grayscaleJPEGGivesEqualChannels() throws {
        let gray = (0..<64).map { UInt8($0 * 4) }
        let jpeg = TestImages.encodeJPEG(width: 8, height: 8, pixels: gray, pixelFormat: TJPF_GRAY,
                                         subsampling: TJSAMP_GRAY, quality: 100)
        let decoded = try ImageDecoder.decode(bytes: jpeg, path: "gray.jpg")

        #expect(decoded.width == 8)
        #expect(decoded.height == 8)
        for pixel in 0..<64 {
            #expect(decoded.pixels[pixel * 3] == decoded.pixels[pixel * 3 + 1])
            #expect(decoded.pixels[pixel * 3] == decoded.pixels[pixel * 3 + 2])
            #expect(abs(Int(decoded.pixels[pixel * 3]) - Int(gray[pixel])) <= 3)
        }
    }

    @Test func adobeCMYKJPEGConvertsToRGB() throws {
        // Stored (inverted) CMYK 255, 0, 255, 255 means no cyan, full magenta, no yellow, no black.
        let cmyk = [UInt8](repeating: 0, count: 8 * 8 * 4).enumerated().map { index, _ in
            index % 4 == 1 ? UInt8(0) : UInt8(255)
        }
        let jpeg = TestImages.encodeJPEG(width: 8, height: 8, pixels: cmyk, pixelFormat: TJPF_CMYK, quality: 100)
        #expect(jpeg.withUnsafeBufferPointer { ImageDecoder.hasAdobeMarker($0) })

        let decoded = try ImageDecoder.decode(bytes: jpeg, path: "cmyk.jpg")
        for pixel in 0..<64 {
            #expect(decoded.pixels[pixel * 3] >= 250)
            #expect(decoded.pixels[pixel * 3 + 1] <= 5)
            #expect(decoded.pixels[pixel * 3 + 2] >= 250)
        }
    }

    @Test func cmykConversionHandlesBothConventions() {
        let cmyk: [UInt8] = [0, 255, 128, 0]
        #expect(ImageDecoder.convertCMYKToRGB(cmyk, inverted: false) == [255, 0, 127])
        #expect(ImageDecoder.convertCMYKToRGB(cmyk, inverted: true) == [0, 0, 0])
        #expect(ImageDecoder.convertCMYKToRGB([255, 255, 128, 128], inverted: true) == [128, 128, 64])
    }

    @Test func truncatedJPEGThrowsNamingPath() throws {
        let jpeg = TestImages.encodeJPEG(TestImages.noise(width: 32, height: 32, seed: 1))
        let truncated = Array(jpeg.prefix(jpeg.count / 2))

        let error = #expect(throws: DataError.self) {
            try ImageDecoder.decode(bytes: truncated, path: "/data/cat/0001.jpg")
        }
        guard case .corruptImage(let path, let message)? = error else {
            Issue.record("expected corruptImage, got \(String(describing: error))")
            return
        }
        #expect(path == "/data/cat/0001.jpg")
        #expect(message.hasPrefix("libjpeg-turbo: "))
        #expect(error!.description.contains("/data/cat/0001.jpg"))
    }

    /// Padding between header segments draws only a warning, and the pixels stay those of the
    /// file without it.
    @Test(arguments: [0xDA, 0xDB, 0xC4] as [UInt8])
    func headerPaddingDecodesLikeOriginal(beforeMarker marker: UInt8) throws {
        let jpeg = TestImages.encodeJPEG(TestImages.noise(width: 32, height: 24, seed: 2))
        var padded = jpeg
        let markerOffset = try #require(TestImages.jpegMarkerOffset(jpeg, marker))
        padded.insert(contentsOf: [0x00, 0x11, 0x22], at: markerOffset)
        padded.append(contentsOf: Array("trailer after the end marker".utf8))

        let original = try ImageDecoder.decode(bytes: jpeg, path: "plain.jpg")
        let decoded = try ImageDecoder.decode(bytes: padded, path: "padded.jpg")
        #expect(decoded == original)
    }

    /// Padding before the end marker draws the same warning as damaged image data, so it is
    /// rejected rather than risk accepting wrong pixels.
    @Test func paddingBeforeEndMarkerRejected() throws {
        let jpeg = TestImages.encodeJPEG(TestImages.noise(width: 32, height: 24, seed: 4))
        var padded = jpeg
        padded.insert(contentsOf: [0x00, 0x11, 0x22, 0x33], at: jpeg.count - 2)

        #expect(throws: DataError.self) {
            try ImageDecoder.decode(bytes: padded, path: "padded.jpg")
        }
    }

    /// Header padding does not excuse a truncated file.
    @Test func paddedTruncatedJPEGRejected() throws {
        let jpeg = TestImages.encodeJPEG(TestImages.noise(width: 32, height: 32, seed: 3))
        var padded = jpeg
        let scanStart = try #require(TestImages.jpegMarkerOffset(jpeg, 0xDA))
        padded.insert(contentsOf: [0x00, 0x11], at: scanStart)
        let truncated = Array(padded.prefix(padded.count * 3 / 4))

        #expect(throws: DataError.self) {
            try ImageDecoder.decode(bytes: truncated, path: "cut.jpg")
        }
    }

    /// The end marker of a thumbnail inside the EXIF segment does not vouch for a truncated image.
    @Test func thumbnailEndMarkerDoesNotExcuseTruncation() throws {
        let jpeg = TestImages.encodeJPEG(TestImages.noise(width: 32, height: 32, seed: 5))
        let thumbnail = TestImages.encodeJPEG(TestImages.noise(width: 8, height: 8, seed: 6))
        let payload = Array("Exif".utf8) + [0, 0] + thumbnail
        let length = payload.count + 2
        var file = Array(jpeg[0..<2]) + [0xFF, 0xE1, UInt8(length >> 8), UInt8(length & 0xFF)] + payload + jpeg[2...]
        let scanStart = try #require(TestImages.jpegMarkerOffset(Array(file[(4 + length)...]), 0xDA)) + 4 + length
        file.insert(contentsOf: [0x00, 0x11], at: scanStart)
        let truncated = Array(file.prefix(scanStart + (file.count - scanStart) / 2))

        #expect(throws: DataError.self) {
            try ImageDecoder.decode(bytes: truncated, path: "cut.jpg")
        }
    }

    /// Changed bytes in the image data, with or without header padding, are mostly caught. Some
    /// changes decode without any warning, so the bound is a share, not every case.
    @Test(arguments: [false, true])
    func damagedImageDataMostlyRejected(withHeaderPadding: Bool) throws {
        let jpeg = TestImages.encodeJPEG(TestImages.noise(width: 64, height: 64, seed: 8))
        let scanStart = try #require(TestImages.jpegMarkerOffset(jpeg, 0xDA))
        let dataStart = scanStart + 2 + (Int(jpeg[scanStart + 2]) << 8 | Int(jpeg[scanStart + 3]))
        let positions = Array(stride(from: dataStart + 16, to: jpeg.count - 2, by: (jpeg.count - 2 - dataStart) / 40))

        var accepted = 0
        for position in positions {
            var damaged = jpeg
            damaged[position] ^= 0x5A
            if withHeaderPadding {
                damaged.insert(contentsOf: [0x00, 0x11], at: scanStart)
            }
            if (try? ImageDecoder.decode(bytes: damaged, path: "damaged.jpg")) != nil {
                accepted += 1
            }
        }
        #expect(positions.count >= 30)
        #expect(accepted * 4 <= positions.count, "accepted \(accepted) of \(positions.count) damaged files")
    }

    @Test func oversizedJPEGHeaderRejected() throws {
        var jpeg = TestImages.encodeJPEG(TestImages.gradient(width: 16, height: 16))
        // Patch the baseline SOF0 segment (FF C0, length, precision, height, width) to 60000 x 60000.
        let sof = try #require((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        for offset in [sof + 5, sof + 7] {
            jpeg[offset] = 0xEA
            jpeg[offset + 1] = 0x60
        }

        #expect(throws: DataError.imageTooLarge(path: "big.jpg", width: 60_000, height: 60_000)) {
            try ImageDecoder.decode(bytes: jpeg, path: "big.jpg")
        }
    }

    @Test func progressiveJPEGDecodesLikeBaseline() throws {
        let original = TestImages.gradient(width: 24, height: 16)
        let progressive = TestImages.encodeJPEG(original, quality: 95, subsampling: TJSAMP_420,
                                                flags: TJFLAG_ACCURATEDCT | TJFLAG_PROGRESSIVE)
        let baseline = TestImages.encodeJPEG(original, quality: 95, subsampling: TJSAMP_420)
        #expect(TestImages.jpegMarkerOffset(progressive, 0xC2) != nil, "no SOF2 (progressive) marker")
        #expect(TestImages.jpegMarkerOffset(baseline, 0xC2) == nil)

        let decoded = try ImageDecoder.decode(bytes: progressive, path: "progressive.jpg")
        let reference = try ImageDecoder.decode(bytes: baseline, path: "baseline.jpg")

        #expect(decoded.width == 24)
        #expect(decoded.height == 16)
        // The same coefficients, sent in several scans, decode to the same pixels.
        #expect(decoded == reference)
        let maxError = zip(decoded.pixels, original.pixels).map { abs(Int($0) - Int($1)) }.max()!
        #expect(maxError <= 8)
    }

    /// Two flat 8×8 blocks of stored (inverted) CMYK values, so that no colour bleeds between them.
    static let cmykBlocks: [[UInt8]] = [[255, 0, 255, 255], [128, 200, 255, 160]]

    static func cmykImage() -> [UInt8] {
        var pixels: [UInt8] = []
        for _ in 0..<8 {
            for x in 0..<16 {
                pixels += cmykBlocks[x / 8]
            }
        }
        return pixels
    }

    @Test func ycckJPEGDecodesToExpectedColours() throws {
        // TurboJPEG stores CMYK input as YCCK, with an Adobe marker saying the samples are inverted.
        let jpeg = TestImages.encodeJPEG(width: 16, height: 8, pixels: Self.cmykImage(), pixelFormat: TJPF_CMYK,
                                         quality: 100)
        #expect(TestImages.jpegColorspace(jpeg) == Int32(TJCS_YCCK.rawValue))

        let decoded = try ImageDecoder.decode(bytes: jpeg, path: "ycck.jpg")

        // Inverted samples hold 255 - ink, so R = C_stored * K_stored / 255 (0 means full ink).
        let expected: [[Int]] = [[255, 0, 255], [80, 125, 160]]
        for y in 0..<8 {
            for x in 0..<16 {
                let pixel = (y * 16 + x) * 3
                for channel in 0..<3 {
                    let value = Int(decoded.pixels[pixel + channel])
                    #expect(abs(value - expected[x / 8][channel]) <= 3, "pixel (\(x), \(y)) channel \(channel): \(value)")
                }
            }
        }
    }

    @Test func cmykWithoutAdobeMarkerIsNotInverted() throws {
        var jpeg = TestImages.encodeJPEG(width: 16, height: 8, pixels: Self.cmykImage(), pixelFormat: TJPF_CMYK,
                                         quality: 100)
        // Cut the APP14 "Adobe" segment out: libjpeg then reads the four components as plain CMYK.
        let app14 = try #require(TestImages.jpegMarkerOffset(jpeg, 0xEE))
        let length = Int(jpeg[app14 + 2]) << 8 | Int(jpeg[app14 + 3])
        jpeg.removeSubrange(app14..<(app14 + 2 + length))
        #expect(TestImages.jpegColorspace(jpeg) == Int32(TJCS_CMYK.rawValue))
        #expect(!jpeg.withUnsafeBufferPointer { ImageDecoder.hasAdobeMarker($0) })

        let raw = try Self.decodeRawCMYK(jpeg)
        let decoded = try ImageDecoder.decode(bytes: jpeg, path: "cmyk.jpg")

        // Plain CMYK samples are ink amounts: R = (255 - C)(255 - K) / 255, rounded.
        for pixel in 0..<(16 * 8) {
            let key = 255 - Int(raw[pixel * 4 + 3])
            for channel in 0..<3 {
                let expected = ((255 - Int(raw[pixel * 4 + channel])) * key + 127) / 255
                #expect(Int(decoded.pixels[pixel * 3 + channel]) == expected)
            }
        }
    }

    /// Decodes a four-component JPEG to its CMYK samples with TurboJPEG, without any conversion.
    static func decodeRawCMYK(_ jpeg: [UInt8]) throws -> [UInt8] {
        let handle = try #require(tjInitDecompress())
        defer { tjDestroy(handle) }
        var output = [UInt8](repeating: 0, count: 16 * 8 * 4)
        let status = jpeg.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                tjDecompress2(handle, source.baseAddress, UInt(source.count), target.baseAddress, 16, 0, 8,
                              Int32(TJPF_CMYK.rawValue), TJFLAG_ACCURATEDCT)
            }
        }
        #expect(status == 0)
        return output
    }

    /// The README promises what Pillow's Image.open does: the EXIF orientation tag is not applied.
    @Test func exifOrientationIsNotApplied() throws {
        let image = TestImages.noise(width: 16, height: 8, seed: 9)
        let plain = TestImages.encodeJPEG(image, quality: 95)
        // APP1 "Exif": a little-endian TIFF header and one IFD entry, Orientation (0x0112) = 6,
        // which tells viewers to rotate the picture 90° clockwise.
        let tiff: [UInt8] = [0x49, 0x49, 0x2A, 0x00, 0x08, 0x00, 0x00, 0x00,
                             0x01, 0x00, 0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00,
                             0x00, 0x00, 0x00, 0x00]
        let payload = Array("Exif".utf8) + [0, 0] + tiff
        let length = payload.count + 2
        let rotated = [0xFF, 0xD8, 0xFF, 0xE1, UInt8(length >> 8), UInt8(length & 0xFF)] + payload + plain.dropFirst(2)

        let decoded = try ImageDecoder.decode(bytes: rotated, path: "rotated.jpg")
        #expect(decoded.width == 16)
        #expect(decoded.height == 8)
        #expect(decoded == (try ImageDecoder.decode(bytes: plain, path: "plain.jpg")))
    }

    @Test func implausiblySmallJPEGRejected() throws {
        var jpeg = TestImages.encodeJPEG(TestImages.noise(width: 32, height: 32, seed: 7))
        // Declare 8000 x 8000 pixels: 1,000,000 blocks need at least 125,000 bytes.
        let sof = try #require(TestImages.jpegMarkerOffset(jpeg, 0xC0))
        for offset in [sof + 5, sof + 7] {
            jpeg[offset] = 0x1F
            jpeg[offset + 1] = 0x40
        }

        #expect(throws: DataError.corruptImage(path: "small.jpg", message: "header declares 8000x8000 pixels, which need at least 125000 bytes, but the file has \(jpeg.count); it is truncated or corrupt")) {
            try ImageDecoder.decode(bytes: jpeg, path: "small.jpg")
        }
    }

    // MARK: PNG

    @Test func pngRGBDecodesExactly() throws {
        let original = TestImages.noise(width: 5, height: 3, seed: 2)
        let png = TestImages.encodePNG(width: 5, height: 3, format: PNG_FORMAT_RGB, pixels: original.pixels)
        #expect(TestImages.pngColorType(png) == 2)

        #expect(try ImageDecoder.decode(bytes: png, path: "rgb.png") == original)
    }

    @Test func pngGrayDecodesToEqualChannels() throws {
        let gray: [UInt8] = [0, 1, 127, 128, 200, 255]
        let png = TestImages.encodePNG(width: 3, height: 2, format: UInt32(PNG_FORMAT_GRAY), pixels: gray)
        #expect(TestImages.pngColorType(png) == 0)

        let decoded = try ImageDecoder.decode(bytes: png, path: "gray.png")
        #expect(decoded.pixels == gray.flatMap { [$0, $0, $0] })
    }

    @Test func pngPaletteDecodesExactly() throws {
        let palette: [UInt8] = [10, 20, 30, 250, 0, 7, 0, 255, 128]
        let indices: [UInt8] = [0, 1, 2, 2, 1, 0]
        let png = TestImages.encodePNG(width: 2, height: 3, format: PNG_FORMAT_RGB | PNG_FORMAT_FLAG_COLORMAP,
                                       pixels: indices, colormap: palette, colormapEntries: 3)
        #expect(TestImages.pngColorType(png) == 3)

        let decoded = try ImageDecoder.decode(bytes: png, path: "palette.png")
        let expected = indices.flatMap { Array(palette[(Int($0) * 3)..<(Int($0) * 3 + 3)]) }
        #expect(decoded.pixels == expected)
    }

    @Test func pngRGBADropsAlphaKeepsColour() throws {
        let rgba: [UInt8] = [200, 100, 50, 255, 10, 20, 30, 128, 90, 180, 45, 0]
        let png = TestImages.encodePNG(width: 3, height: 1, format: PNG_FORMAT_RGB | PNG_FORMAT_FLAG_ALPHA,
                                       pixels: rgba)
        #expect(TestImages.pngColorType(png) == 6)

        let decoded = try ImageDecoder.decode(bytes: png, path: "rgba.png")
        #expect(decoded.pixels == [200, 100, 50, 10, 20, 30, 90, 180, 45])
    }

    /// A half-transparent RGBA PNG decodes to the same pixels as the RGB PNG of its colours, so
    /// both give the same features.
    @Test func halfTransparentPNGMatchesOpaqueRGB() throws {
        let image = TestImages.noise(width: 8, height: 8, seed: 11)
        var rgba: [UInt8] = []
        for pixel in 0..<(8 * 8) {
            rgba += image.pixels[(pixel * 3)..<(pixel * 3 + 3)] + [128]
        }
        let rgbPNG = TestImages.encodePNG(width: 8, height: 8, format: PNG_FORMAT_RGB, pixels: image.pixels)
        let rgbaPNG = TestImages.encodePNG(width: 8, height: 8, format: PNG_FORMAT_RGB | PNG_FORMAT_FLAG_ALPHA, pixels: rgba)
        #expect(TestImages.pngColorType(rgbaPNG) == 6)

        let fromRGB = try ImageDecoder.decode(bytes: rgbPNG, path: "opaque.png")
        let fromRGBA = try ImageDecoder.decode(bytes: rgbaPNG, path: "half-transparent.png")

        #expect(fromRGB.pixels == image.pixels)
        #expect(fromRGBA.pixels == image.pixels)
    }

    @Test func png16BitScalesToEightBits() throws {
        // Samples v become round(v * 255 / 65535): 0x8080 is exactly 128, 0x12FF is 18.92.
        let samples: [UInt16] = [0, 0xFFFF, 0x8080, 0x12FF, 0x0101, 0xFEFF]
        let row = samples.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        let png = TestImages.handWrittenPNG(width: 2, height: 1, bitDepth: 16, colorType: 2, rows: [row])
        #expect(TestImages.pngBitDepth(png) == 16)

        let decoded = try ImageDecoder.decode(bytes: png, path: "deep.png")
        #expect(decoded.pixels == [0, 255, 128, 19, 1, 254])
    }

    @Test func png16BitGrayDecodesToEqualChannels() throws {
        let row: [UInt8] = [0x40, 0x40, 0xC0, 0xC0]
        let png = TestImages.handWrittenPNG(width: 2, height: 1, bitDepth: 16, colorType: 0, rows: [row])

        let decoded = try ImageDecoder.decode(bytes: png, path: "deep-gray.png")
        #expect(decoded.pixels == [64, 64, 64, 192, 192, 192])
    }

    /// libpng 1.6.39's simplified API scrambles the pixels of the first six Adam7 passes when it
    /// scales 16-bit samples to 8 bits. Each interlaced result is compared with the scaled samples
    /// round(v * 255 / 65535) and with the same image stored without interlacing.
    @Test(arguments: [(UInt8(2), 3), (UInt8(6), 4), (UInt8(0), 1), (UInt8(4), 2)])
    func interlaced16BitPNGMatchesPlain(colorType: UInt8, channels: Int) throws {
        let width = 11
        let height = 9
        var random = SampleRandom(seed: 7)
        let samples = (0..<(width * height * channels)).map { _ in UInt16(random.nextInt(below: 65_536)) }
        let rows = (0..<height).map { y in
            samples[(y * width * channels)..<((y + 1) * width * channels)].flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        }
        let interlaced = TestImages.handWrittenPNG(width: width, height: height, bitDepth: 16, colorType: colorType,
                                                   rows: rows, interlaced: true)
        let plain = TestImages.handWrittenPNG(width: width, height: height, bitDepth: 16, colorType: colorType, rows: rows)
        var expected: [UInt8] = []
        for pixel in 0..<(width * height) {
            let colour = channels >= 3 ? Array(0..<3) : [0, 0, 0]
            expected += colour.map { UInt8((Double(samples[pixel * channels + $0]) * 255 / 65_535).rounded()) }
        }

        let decoded = try ImageDecoder.decode(bytes: interlaced, path: "interlaced.png")
        #expect(decoded.width == width)
        #expect(decoded.height == height)
        #expect(decoded.pixels == expected)
        #expect(decoded == (try ImageDecoder.decode(bytes: plain, path: "plain.png")))
    }

    /// Pillow, and so torchvision's ImageFolder, return the stored samples and ignore the gAMA chunk.
    /// libpng's simplified API converts them to sRGB, by up to 72 of 255 for gAMA 1.0.
    @Test(arguments: [UInt32(100_000), 55_555, 45_455])
    func pngGammaChunkKeepsStoredSamples(gamma: UInt32) throws {
        let rgb: [UInt8] = [0, 1, 30, 64, 128, 200, 254, 255, 77]
        let rgba: [UInt8] = [0, 1, 30, 255, 64, 128, 200, 0, 254, 255, 77, 90]
        let samples16: [UInt16] = [0x0000, 0x0101, 0x1E1E, 0x4040, 0x8080, 0xC8C8, 0xFEFE, 0xFFFF, 0x4D4D]
        let files: [(String, [UInt8])] = [
            ("rgb", TestImages.handWrittenPNG(width: 3, height: 1, bitDepth: 8, colorType: 2, rows: [rgb], gamma: gamma)),
            ("rgba", TestImages.handWrittenPNG(width: 3, height: 1, bitDepth: 8, colorType: 6, rows: [rgba], gamma: gamma)),
            ("gray", TestImages.handWrittenPNG(width: 9, height: 1, bitDepth: 8, colorType: 0, rows: [rgb], gamma: gamma)),
            ("rgb16", TestImages.handWrittenPNG(width: 3, height: 1, bitDepth: 16, colorType: 2,
                                                rows: [samples16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }], gamma: gamma)),
        ]
        let expected: [String: [UInt8]] = [
            "rgb": rgb, "rgba": rgb, "gray": rgb.flatMap { [$0, $0, $0] }, "rgb16": rgb,
        ]

        for (name, png) in files {
            let decoded = try ImageDecoder.decode(bytes: png, path: name + ".png")
            #expect(decoded.pixels == expected[name], "\(name) with gAMA \(gamma)")
        }
    }

    @Test func interlacedTruncated16BitPNGThrows() throws {
        let rows = [[UInt8]](repeating: [UInt8](repeating: 0x5A, count: 8 * 6), count: 8)
        let png = TestImages.handWrittenPNG(width: 8, height: 8, bitDepth: 16, colorType: 2, rows: rows, interlaced: true)
        let truncated = Array(png.prefix(png.count - 40))

        let error = #expect(throws: DataError.self) {
            try ImageDecoder.decode(bytes: truncated, path: "cut.png")
        }
        #expect(error == .corruptImage(path: "cut.png", message: "libpng: the file ends before the image data is complete"))
    }

    @Test func pngGrayAlphaDropsAlpha() throws {
        let grayAlpha: [UInt8] = [0, 255, 90, 0, 200, 128, 255, 7]
        let png = TestImages.encodePNG(width: 2, height: 2, format: PNG_FORMAT_FLAG_ALPHA, pixels: grayAlpha)
        #expect(TestImages.pngColorType(png) == 4)

        let decoded = try ImageDecoder.decode(bytes: png, path: "gray-alpha.png")
        #expect(decoded.pixels == [0, 0, 0, 90, 90, 90, 200, 200, 200, 255, 255, 255])
    }

    @Test func png16BitRGBAScalesAndDropsAlpha() throws {
        // Opaque and half-transparent pixels: the colour samples are scaled as without alpha.
        let samples: [UInt16] = [0xFFFF, 0x0000, 0x8080, 0xFFFF, 0x12FF, 0x0101, 0xFEFF, 0x8000]
        let row = samples.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        let png = TestImages.handWrittenPNG(width: 2, height: 1, bitDepth: 16, colorType: 6, rows: [row])
        #expect(TestImages.pngColorType(png) == 6)
        #expect(TestImages.pngBitDepth(png) == 16)

        let decoded = try ImageDecoder.decode(bytes: png, path: "deep-rgba.png")
        #expect(decoded.pixels == [255, 0, 128, 19, 1, 254])
    }

    @Test func palettePNGWithTransparencyKeepsColours() throws {
        // An RGBA palette: libpng writes its alpha values as a tRNS chunk.
        let palette: [UInt8] = [10, 20, 30, 255, 250, 0, 7, 0, 0, 255, 128, 90]
        let indices: [UInt8] = [0, 1, 2, 2, 1, 0]
        let png = TestImages.encodePNG(width: 3, height: 2, format: PNG_FORMAT_RGB | PNG_FORMAT_FLAG_ALPHA | PNG_FORMAT_FLAG_COLORMAP,
                                       pixels: indices, colormap: palette, colormapEntries: 3)
        #expect(TestImages.pngColorType(png) == 3)
        #expect(png.indices.contains { png[$0...].starts(with: Array("tRNS".utf8)) })

        let decoded = try ImageDecoder.decode(bytes: png, path: "palette-alpha.png")
        let expected = indices.flatMap { Array(palette[(Int($0) * 4)..<(Int($0) * 4 + 3)]) }
        #expect(decoded.pixels == expected)
    }

    @Test func implausiblySmallPNGRejected() throws {
        // 5000 x 5000 RGB is 75,000,000 bytes of samples; deflate needs at least 1/1032 of that.
        let png = TestImages.handWrittenPNG(width: 5000, height: 5000, bitDepth: 8, colorType: 2, rows: [[1, 2, 3]])

        #expect(throws: DataError.corruptImage(path: "small.png", message: "header declares 5000x5000 pixels, which need at least 72674 bytes, but the file has \(png.count); it is truncated or corrupt")) {
            try ImageDecoder.decode(bytes: png, path: "small.png")
        }
    }

    @Test func truncatedPNGThrowsNamingPath() throws {
        let original = TestImages.noise(width: 16, height: 16, seed: 3)
        let png = TestImages.encodePNG(width: 16, height: 16, format: PNG_FORMAT_RGB, pixels: original.pixels)
        let truncated = Array(png.prefix(png.count - 40))

        let error = #expect(throws: DataError.self) {
            try ImageDecoder.decode(bytes: truncated, path: "/data/dog/7.png")
        }
        guard case .corruptImage(let path, let message)? = error else {
            Issue.record("expected corruptImage, got \(String(describing: error))")
            return
        }
        #expect(path == "/data/dog/7.png")
        #expect(message.hasPrefix("libpng: "))
        #expect(message.count > "libpng: ".count)
    }

    @Test func oversizedPNGHeaderRejected() {
        let png = TestImages.handWrittenPNG(width: 20_000, height: 20_000, bitDepth: 8, colorType: 2,
                                            rows: [[1, 2, 3]])

        #expect(throws: DataError.imageTooLarge(path: "big.png", width: 20_000, height: 20_000)) {
            try ImageDecoder.decode(bytes: png, path: "big.png")
        }
    }

    // MARK: Other input

    @Test func nonImageFileThrowsUnsupportedFormat() throws {
        let folder = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(folder) }
        let path = folder + "/notes.jpg"
        try TestImages.write(Array("not an image at all".utf8), to: path)

        #expect(throws: DataError.unsupportedFormat(path: path)) {
            try ImageDecoder.decode(contentsOf: path)
        }
        #expect(DataError.unsupportedFormat(path: path).description.contains(path))
    }

    @Test func emptyInputIsNamedEmpty() {
        #expect(throws: DataError.corruptImage(path: "empty.png", message: "the file is empty")) {
            try ImageDecoder.decode(bytes: [], path: "empty.png")
        }
    }

    @Test func missingFileThrowsUnreadable() {
        let path = "/nonexistent-npid-folder/cat/1.jpg"
        let error = #expect(throws: DataError.self) {
            try ImageDecoder.decode(contentsOf: path)
        }
        guard case .unreadableFile(let reportedPath, let reason)? = error else {
            Issue.record("expected unreadableFile, got \(String(describing: error))")
            return
        }
        #expect(reportedPath == path)
        #expect(reason == "No such file or directory")
        #expect(error!.description.contains(path))
    }

    /// Opening a FIFO for reading blocks until a writer opens it, so a pipe named like an image must be rejected before that.
    @Test func fifoIsRejectedWithoutWaiting() throws {
        let folder = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(folder) }
        let path = folder + "/pipe.jpg"
        #expect(mkfifo(path, 0o600) == 0)
        // A writer that opens and closes the FIFO later ends a blocked open, so a decoder that
        // waits fails this test with "the file is empty" instead of hanging it.
        DispatchQueue.global().asyncAfter(deadline: .now() + 2) {
            let writer = open(path, O_WRONLY | O_NONBLOCK)
            if writer >= 0 { close(writer) }
        }

        let error = #expect(throws: DataError.self) {
            try ImageDecoder.decode(contentsOf: path)
        }
        #expect(error == .unreadableFile(path: path, reason: "it is not a regular file"))
    }

    @Test func decodeFromFileMatchesMemory() throws {
        let folder = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(folder) }
        let original = TestImages.noise(width: 7, height: 9, seed: 4)
        let png = TestImages.encodePNG(width: 7, height: 9, format: PNG_FORMAT_RGB, pixels: original.pixels)
        // The extension is wrong on purpose: the format comes from the leading bytes.
        try TestImages.write(png, to: folder + "/image.jpg")

        #expect(try ImageDecoder.decode(contentsOf: folder + "/image.jpg") == original)
    }

    /// Single-byte corruptions and truncations must give an image or a DataError, never a crash.
    @Test func corruptedBytesNeverCrash() {
        let image = TestImages.noise(width: 16, height: 16, seed: 5)
        let files = [
            TestImages.encodeJPEG(image),
            TestImages.encodePNG(width: 16, height: 16, format: PNG_FORMAT_RGB, pixels: image.pixels),
        ]
        var random = SampleRandom(seed: 6)
        var otherErrors: [String] = []
        for file in files {
            for _ in 0..<150 {
                var corrupted = file
                let position = 3 + random.nextInt(below: corrupted.count - 3)
                if random.nextUniform() < 0.3 {
                    corrupted.removeSubrange(position...)
                } else {
                    corrupted[position] ^= UInt8(1 + random.nextInt(below: 255))
                }
                do {
                    let decoded = try ImageDecoder.decode(bytes: corrupted, path: "fuzz")
                    #expect(decoded.pixels.count == decoded.width * decoded.height * 3)
                } catch is DataError {
                    continue
                } catch {
                    otherErrors.append("\(error)")
                }
            }
        }
        #expect(otherErrors.isEmpty)
    }
}
