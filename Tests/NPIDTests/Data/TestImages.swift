import CImageCodecs
import Foundation
@testable import NPID

/// Encoders and temporary folders for the data pipeline tests, so that most tests need no shared data.
enum TestImages {
    /// Makes an image whose channels are smooth functions of position, so JPEG keeps them close.
    static func gradient(width: Int, height: Int) -> RGBImage {
        var pixels: [UInt8] = []
        pixels.reserveCapacity(width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                pixels.append(UInt8(40 + 160 * x / max(width - 1, 1)))
                pixels.append(UInt8(40 + 160 * y / max(height - 1, 1)))
                pixels.append(UInt8(120))
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// Makes an image with an independent pseudo-random value in every channel.
    static func noise(width: Int, height: Int, seed: UInt64) -> RGBImage {
        var random = SampleRandom(seed: seed)
        let pixels = (0..<(width * height * 3)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    // MARK: JPEG

    /// Encodes with TurboJPEG; `channels` must match `pixelFormat` (3 for RGB, 1 for gray, 4 for CMYK).
    static func encodeJPEG(width: Int, height: Int, pixels: [UInt8], pixelFormat: TJPF,
                           subsampling: TJSAMP = TJSAMP_444, quality: Int32 = 95,
                           flags: Int32 = TJFLAG_ACCURATEDCT) -> [UInt8] {
        let handle = tjInitCompress()!
        defer { tjDestroy(handle) }
        var buffer: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        let status = pixels.withUnsafeBufferPointer { source in
            tjCompress2(handle, source.baseAddress, Int32(width), 0, Int32(height), Int32(pixelFormat.rawValue),
                        &buffer, &size, Int32(subsampling.rawValue), quality, flags)
        }
        defer { tjFree(buffer) }
        precondition(status == 0, "tjCompress2 failed: \(String(cString: tjGetErrorStr2(handle)))")
        return Array(UnsafeBufferPointer(start: buffer, count: Int(size)))
    }

    static func encodeJPEG(_ image: RGBImage, quality: Int32 = 95, subsampling: TJSAMP = TJSAMP_444,
                           flags: Int32 = TJFLAG_ACCURATEDCT) -> [UInt8] {
        encodeJPEG(width: image.width, height: image.height, pixels: image.pixels, pixelFormat: TJPF_RGB,
                   subsampling: subsampling, quality: quality, flags: flags)
    }

    /// Returns the offset of the first marker `0xFF marker` in the JPEG header, or nil.
    static func jpegMarkerOffset(_ jpeg: [UInt8], _ marker: UInt8) -> Int? {
        (0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == marker }
    }

    /// Returns the colour space TurboJPEG reads from the header (a TJCS value).
    static func jpegColorspace(_ jpeg: [UInt8]) -> Int32 {
        let handle = tjInitDecompress()!
        defer { tjDestroy(handle) }
        var width: Int32 = 0
        var height: Int32 = 0
        var subsampling: Int32 = 0
        var colorspace: Int32 = -1
        _ = jpeg.withUnsafeBufferPointer { buffer in
            tjDecompressHeader3(handle, buffer.baseAddress, UInt(buffer.count), &width, &height, &subsampling, &colorspace)
        }
        return colorspace
    }

    // MARK: PNG

    /// Encodes 8-bit samples with libpng's simplified write API.
    /// `format` is a PNG_FORMAT_* value; colour-mapped formats need `colormap` in the same format.
    static func encodePNG(width: Int, height: Int, format: UInt32, pixels: [UInt8],
                          colormap: [UInt8]? = nil, colormapEntries: Int = 0) -> [UInt8] {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = format
        image.colormap_entries = UInt32(colormapEntries)

        var size: Int = 0
        let sized = pixels.withUnsafeBytes { source in
            png_image_write_to_memory(&image, nil, &size, 0, source.baseAddress, 0, colormap)
        }
        precondition(sized != 0, "png_image_write_to_memory could not size the PNG")
        var output = [UInt8](repeating: 0, count: size)
        let written = pixels.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { target in
                png_image_write_to_memory(&image, target.baseAddress, &size, 0, source.baseAddress, 0, colormap)
            }
        }
        precondition(written != 0, "png_image_write_to_memory failed")
        return Array(output.prefix(size))
    }

    /// Returns the colour type byte of IHDR (0 gray, 2 RGB, 3 palette, 4 gray + alpha, 6 RGBA).
    static func pngColorType(_ png: [UInt8]) -> UInt8 { png[25] }

    /// Returns the bit depth byte of IHDR.
    static func pngBitDepth(_ png: [UInt8]) -> UInt8 { png[24] }

    /// Recomputes the CRC of every chunk, so that a test can change chunk data and still pass libpng's
    /// CRC check. Stops at the first chunk that runs past the end of the file.
    static func fixPNGChecksums(_ png: inout [UInt8]) {
        var offset = 8
        while offset + 12 <= png.count {
            let length = Int(png[offset]) << 24 | Int(png[offset + 1]) << 16 | Int(png[offset + 2]) << 8 | Int(png[offset + 3])
            let end = offset + 8 + length
            guard length >= 0, end + 4 <= png.count else { return }
            let crc = bigEndian(crc32(Array(png[(offset + 4)..<end])))
            png.replaceSubrange(end..<(end + 4), with: crc)
            offset = end + 4
        }
    }

    /// Builds a PNG chunk by chunk, because libpng's simplified writer cannot produce 16-bit sRGB files
    /// (it writes 16-bit data as linear light with gAMA 1.0) or headers with chosen sizes.
    /// The image data is stored in uncompressed deflate blocks.
    /// - Parameters:
    ///   - rows: each row's samples, already in big-endian bytes, without the filter byte.
    ///   - interlaced: store the rows as the seven Adam7 passes (bit depths 8 and 16 only).
    ///   - gamma: the gAMA chunk's value (file gamma × 100000), or nil to write no gAMA chunk.
    static func handWrittenPNG(width: Int, height: Int, bitDepth: UInt8, colorType: UInt8, rows: [[UInt8]],
                               interlaced: Bool = false, gamma: UInt32? = nil) -> [UInt8] {
        var header: [UInt8] = []
        header += bigEndian(UInt32(width))
        header += bigEndian(UInt32(height))
        header += [bitDepth, colorType, 0, 0, interlaced ? 1 : 0]

        var raw: [UInt8] = []
        let storedRows = interlaced ? adam7Rows(rows, bitDepth: bitDepth, colorType: colorType) : rows
        for row in storedRows {
            raw.append(0)  // filter type None
            raw += row
        }
        var zlib: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let length = min(65_535, raw.count - offset)
            let isLast = offset + length == raw.count
            zlib.append(isLast ? 1 : 0)
            zlib += [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8((~length >> 8) & 0xFF)]
            zlib += raw[offset..<(offset + length)]
            offset += length
        } while offset < raw.count
        zlib += bigEndian(adler32(raw))

        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        png += chunk("IHDR", header)
        if let gamma {
            png += chunk("gAMA", bigEndian(gamma))
        }
        png += chunk("IDAT", zlib)
        png += chunk("IEND", [])
        return png
    }

    /// Returns the rows of the seven Adam7 passes in file order: pass p takes every x-step-th pixel
    /// from x-start of every y-step-th row from y-start, and empty passes contribute no rows.
    private static func adam7Rows(_ rows: [[UInt8]], bitDepth: UInt8, colorType: UInt8) -> [[UInt8]] {
        precondition(bitDepth == 8 || bitDepth == 16, "adam7Rows splits whole bytes, so it needs 8 or 16 bits")
        let channels = [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][Int(colorType)]!
        let pixelBytes = channels * Int(bitDepth) / 8
        let passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        var result: [[UInt8]] = []
        for (xStart, yStart, xStep, yStep) in passes {
            for y in stride(from: yStart, to: rows.count, by: yStep) {
                let pixelCount = rows[y].count / pixelBytes
                let passRow = stride(from: xStart, to: pixelCount, by: xStep).flatMap {
                    rows[y][($0 * pixelBytes)..<(($0 + 1) * pixelBytes)]
                }
                if !passRow.isEmpty {
                    result.append(passRow)
                }
            }
        }
        return result
    }

    private static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typeBytes = Array(type.utf8)
        return bigEndian(UInt32(data.count)) + typeBytes + data + bigEndian(crc32(typeBytes + data))
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    private static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1
            }
        }
        return ~crc
    }

    private static func adler32(_ bytes: [UInt8]) -> UInt32 {
        var a: UInt32 = 1
        var b: UInt32 = 0
        for byte in bytes {
            a = (a + UInt32(byte)) % 65_521
            b = (b + a) % 65_521
        }
        return b << 16 | a
    }

    // MARK: Files

    /// Creates an empty folder under the system temporary folder; the caller removes it.
    static func makeTemporaryFolder() throws -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("npid-data-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func removeFolder(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Root of the real CIFAR-10 JPEG folders: $NPID_DATA, else the shared copy; nil when neither exists.
    static func cifarRoot() -> String? {
        var candidates: [String] = []
        if let fromEnvironment = ProcessInfo.processInfo.environment["NPID_DATA"] {
            candidates.append(fromEnvironment)
        }
        candidates.append("/work/shared/data/cifar10-jpeg")
        return candidates.first { ImageFolder.isFolder($0 + "/train") && ImageFolder.isFolder($0 + "/test") }
    }
}
