#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CImageCodecs
import Testing
@testable import NPID

/// Encodes with `PNGEncoder` and decodes with libpng's simplified read API, so the pixels are
/// checked by an independent decoder.
@Suite struct PNGEncoderTests {
    /// Decodes a PNG to 8-bit RGB with libpng, returning nil if libpng rejects it.
    func decode(_ png: [UInt8]) -> RGBImage? {
        var control = png_image()
        control.version = png_uint_32(PNG_IMAGE_VERSION)
        let begun = png.withUnsafeBytes { png_image_begin_read_from_memory(&control, $0.baseAddress, $0.count) }
        guard begun != 0 else {
            return nil
        }
        control.format = png_uint_32(PNG_FORMAT_RGB)
        let width = Int(control.width)
        let height = Int(control.height)
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        let finished = pixels.withUnsafeMutableBytes { png_image_finish_read(&control, nil, $0.baseAddress, 0, nil) }
        png_image_free(&control)
        guard finished != 0 else {
            return nil
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// Returns an image in which neighbouring pixels and channels differ, so a shift or channel swap shows.
    func gradient(width: Int, height: Int) -> RGBImage {
        var image = RGBImage(width: width, height: height)
        for y in 0..<height {
            for x in 0..<width {
                let base = (y * width + x) * 3
                image.pixels[base] = UInt8(truncatingIfNeeded: x * 7 + y)
                image.pixels[base + 1] = UInt8(truncatingIfNeeded: y * 13 + x * 3)
                image.pixels[base + 2] = UInt8(truncatingIfNeeded: (x ^ y) * 5 + 1)
            }
        }
        return image
    }

    @Test func encodeStartsWithSignature() throws {
        let png = try PNGEncoder.encode(gradient(width: 5, height: 3))
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        // The IHDR chunk comes first and stores width and height as big-endian 32-bit values.
        #expect(Array(png[12..<16]) == Array("IHDR".utf8))
        #expect(Array(png[16..<24]) == [0, 0, 0, 5, 0, 0, 0, 3])
    }

    @Test(arguments: [(1, 1), (5, 3), (64, 64), (333, 17)])
    func decodedPixelsMatchExactly(size: (Int, Int)) throws {
        let image = gradient(width: size.0, height: size.1)

        let decoded = try #require(decode(try PNGEncoder.encode(image)))

        #expect(decoded.width == image.width)
        #expect(decoded.height == image.height)
        #expect(decoded.pixels == image.pixels)
    }

    @Test func smallFirstBufferRetries() throws {
        let image = gradient(width: 40, height: 30)

        let png = try PNGEncoder.encode(image, initialCapacity: 16)

        #expect(png == (try PNGEncoder.encode(image)))
        #expect(decode(png) == image)
    }

    @Test func noisyImageRoundTrips() throws {
        // Pseudo-random pixels barely compress, so the output is close to its largest size.
        var state: UInt64 = 0x9E3779B97F4A7C15
        var image = RGBImage(width: 300, height: 200)
        for index in image.pixels.indices {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            image.pixels[index] = UInt8(truncatingIfNeeded: state >> 56)
        }

        let decoded = try #require(decode(try PNGEncoder.encode(image)))

        #expect(decoded == image)
    }

    @Test func writeCreatesDecodableFile() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        let path = folder + "/grid.png"
        let image = gradient(width: 8, height: 4)

        try PNGEncoder.write(image, to: path)

        let bytes = try #require(FormatsTestFiles.readBytes(path))
        #expect(decode(bytes) == image)
        #expect(FormatsTestFiles.list(folder) == ["grid.png"])
    }

    @Test func writeIntoMissingFolderThrows() {
        let error = #expect(throws: FileIOError.self) {
            try PNGEncoder.write(gradient(width: 2, height: 2), to: "/nonexistent-npid/grid.png")
        }
        #expect(error?.code == ENOENT)
    }
}
