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

    @Test func emptyInputThrowsUnsupportedFormat() {
        #expect(throws: DataError.unsupportedFormat(path: "empty.png")) {
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
