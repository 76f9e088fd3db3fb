import CImageCodecs
import CPNGRead
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Decoder for JPEG (libjpeg-turbo's TurboJPEG API) and PNG (libpng's simplified API) files into 8-bit RGB.
///
/// The format is chosen from the leading bytes, never from the file name. Errors are thrown as `DataError`
/// and name the path; corrupt input never traps.
public enum ImageDecoder {
    /// The largest width × height accepted, checked against the header before the pixel buffer is allocated.
    public static let maxPixelCount = 1 << 28

    /// Reads and decodes the file at `path`.
    public static func decode(contentsOf path: String) throws -> RGBImage {
        let bytes = try readFile(atPath: path)
        return try decode(bytes: bytes, path: path)
    }

    /// Decodes an in-memory JPEG or PNG file; `path` is used only in error messages.
    ///
    /// Before any pixel buffer is allocated, the declared size must pass two checks: at most
    /// `maxPixelCount` pixels, and no more than the file's byte count can encode (see
    /// `checkCompressedSize`), so a small corrupt file cannot make the decoder allocate gigabytes.
    public static func decode(bytes: [UInt8], path: String, maxPixelCount: Int = maxPixelCount) throws -> RGBImage {
        if hasJPEGSignature(bytes) {
            return try decodeJPEG(bytes, path: path, maxPixelCount: maxPixelCount)
        }
        if hasPNGSignature(bytes) {
            return try decodePNG(bytes, path: path, maxPixelCount: maxPixelCount)
        }
        if bytes.isEmpty {
            throw DataError.corruptImage(path: path, message: "the file is empty")
        }
        throw DataError.unsupportedFormat(path: path)
    }

    // MARK: File input

    /// Reads a whole file with POSIX calls, which avoids Foundation's `Data` copy for every image.
    static func readFile(atPath path: String) throws -> [UInt8] {
        // O_NONBLOCK keeps open() from waiting for a writer when the path is a FIFO. It has no
        // effect on regular files, and every other kind of file is rejected below.
        let descriptor = open(path, O_RDONLY | O_NONBLOCK)
        guard descriptor >= 0 else {
            throw DataError.unreadableFile(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(descriptor) }

        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw DataError.unreadableFile(path: path, reason: String(cString: strerror(errno)))
        }
        switch status.st_mode & S_IFMT {
        case S_IFREG:
            break
        case S_IFDIR:
            throw DataError.unreadableFile(path: path, reason: "it is a folder")
        default:
            throw DataError.unreadableFile(path: path, reason: "it is not a regular file")
        }

        let size = Int(status.st_size)
        return try [UInt8](unsafeUninitializedCapacity: size) { buffer, initializedCount in
            // read() may return fewer bytes than asked for, and the file may shrink while it is read.
            while initializedCount < size {
                let result = read(descriptor, buffer.baseAddress! + initializedCount, size - initializedCount)
                if result < 0 {
                    if errno == EINTR { continue }
                    throw DataError.unreadableFile(path: path, reason: String(cString: strerror(errno)))
                }
                if result == 0 { break }
                initializedCount += result
            }
        }
    }

    static func hasJPEGSignature(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF
    }

    static func hasPNGSignature(_ bytes: [UInt8]) -> Bool {
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        return bytes.count >= signature.count && bytes.prefix(signature.count).elementsEqual(signature)
    }

    static func checkPixelCount(width: Int, height: Int, limit: Int, path: String) throws {
        guard width > 0, height > 0 else {
            throw DataError.corruptImage(path: path, message: "header declares an empty \(width)x\(height) image")
        }
        guard width <= limit / height else {
            throw DataError.imageTooLarge(path: path, width: width, height: height)
        }
    }

    /// Rejects a header that declares more data than the whole file can hold, which is how truncated and
    /// corrupt files would otherwise make the decoder allocate and clear large buffers.
    /// - Parameter minimumBytes: a lower bound on the size of any complete file with this header.
    static func checkCompressedSize(width: Int, height: Int, fileSize: Int, minimumBytes: Int, path: String) throws {
        guard fileSize >= minimumBytes else {
            throw DataError.corruptImage(
                path: path, message: "header declares \(width)x\(height) pixels, which need at least "
                    + "\(minimumBytes) bytes, but the file has \(fileSize); it is truncated or corrupt")
        }
    }

    // MARK: JPEG

    static func decodeJPEG(_ bytes: [UInt8], path: String, maxPixelCount: Int) throws -> RGBImage {
        guard let handle = tjInitDecompress() else {
            throw DataError.corruptImage(path: path, message: "libjpeg-turbo could not create a decompressor")
        }
        defer { tjDestroy(handle) }

        return try bytes.withUnsafeBufferPointer { jpeg in
            let jpegSize = UInt(jpeg.count)
            var width: Int32 = 0
            var height: Int32 = 0
            var subsampling: Int32 = 0
            var colorspace: Int32 = 0
            guard tjDecompressHeader3(handle, jpeg.baseAddress, jpegSize,
                                      &width, &height, &subsampling, &colorspace) == 0 else {
                let message = turboJPEGMessage(handle)
                // Padding between header segments draws only a warning, and Pillow 13 opens such files.
                // Without the padding the file is decoded as strictly as any other.
                if tjGetErrorCode(handle) == Int32(TJERR_WARNING.rawValue),
                   message.contains("extraneous bytes before marker"), let cleaned = withoutHeaderPadding(jpeg) {
                    return try decodeJPEG(cleaned, path: path, maxPixelCount: maxPixelCount)
                }
                throw DataError.corruptImage(path: path, message: "libjpeg-turbo: " + message)
            }
            let pixelWidth = Int(width)
            let pixelHeight = Int(height)
            try checkPixelCount(width: pixelWidth, height: pixelHeight, limit: maxPixelCount, path: path)
            // Huffman coding spends at least one bit on every 8×8 block of the first component, which
            // TurboJPEG only accepts at full resolution, so a complete file has at least blocks / 8 bytes.
            // NOTE: an arithmetic-coded JPEG of a nearly flat picture can be smaller and is rejected.
            let blocks = ((pixelWidth + 7) / 8) * ((pixelHeight + 7) / 8)
            try checkCompressedSize(width: pixelWidth, height: pixelHeight, fileSize: jpeg.count,
                                    minimumBytes: blocks / 8, path: path)

            // TurboJPEG decodes CMYK and YCCK files only to CMYK pixels, so those are converted here.
            let isCMYK = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
            let pixelFormat = isCMYK ? Int32(TJPF_CMYK.rawValue) : Int32(TJPF_RGB.rawValue)
            let channels = isCMYK ? 4 : 3

            // Warnings (such as "Premature end of JPEG file" for a truncated file) also return -1 and
            // count as failures, because libjpeg-turbo fills the missing part with grey. Stopping at the
            // first warning saves decoding the rest of a broken file, and the scan limit stops progressive
            // files with thousands of tiny scans, which take minutes to decode.
            // NOTE: this also rejects padding after the image data, before the end marker, which
            // Pillow accepts. libjpeg-turbo gives damaged image data the same warning.
            let flags = TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS
            let decoded = try [UInt8](unsafeUninitializedCapacity: pixelWidth * pixelHeight * channels) {
                buffer, initializedCount in
                let status = tjDecompress2(handle, jpeg.baseAddress, jpegSize, buffer.baseAddress,
                                           width, 0, height, pixelFormat, flags)
                guard status == 0 else {
                    throw DataError.corruptImage(path: path, message: "libjpeg-turbo: " + turboJPEGMessage(handle))
                }
                initializedCount = buffer.count
            }

            if isCMYK {
                let pixels = convertCMYKToRGB(decoded, inverted: hasAdobeMarker(jpeg))
                return RGBImage(width: pixelWidth, height: pixelHeight, pixels: pixels)
            }
            return RGBImage(width: pixelWidth, height: pixelHeight, pixels: decoded)
        }
    }

    /// Returns the file without the bytes between its header segments that are not markers, or
    /// nil when it has none or its header is cut short. Everything from the first start-of-scan
    /// marker on is kept as it is, so padding or damage there still fails the strict decode.
    static func withoutHeaderPadding(_ jpeg: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard jpeg.count >= 2 else { return nil }
        var cleaned = Array(jpeg[0..<2])
        var removedPadding = false
        var offset = 2
        while offset < jpeg.count {
            if jpeg[offset] != 0xFF {
                removedPadding = true
                offset += 1
                continue
            }
            guard offset + 1 < jpeg.count else { return nil }
            let marker = jpeg[offset + 1]
            if marker == 0xFF {
                offset += 1  // a fill byte before a marker
                continue
            }
            if marker == 0xDA || marker == 0xD9 {
                cleaned.append(contentsOf: jpeg[offset...])
                return removedPadding ? cleaned : nil
            }
            guard offset + 3 < jpeg.count else { return nil }
            let length = Int(jpeg[offset + 2]) << 8 | Int(jpeg[offset + 3])
            guard length >= 2, offset + 2 + length <= jpeg.count else { return nil }
            cleaned.append(contentsOf: jpeg[offset..<(offset + 2 + length)])
            offset += 2 + length
        }
        return nil
    }

    static func turboJPEGMessage(_ handle: tjhandle) -> String {
        guard let message = tjGetErrorStr2(handle) else { return "unknown error" }
        return String(cString: message)
    }

    /// Converts CMYK to RGB with the naive formula R = (1 - C)(1 - K), the same as Pillow's.
    /// Without a colour management system this is only approximate.
    /// - Parameter inverted: whether the samples are stored as 255 - value, which is Adobe's convention.
    static func convertCMYKToRGB(_ cmyk: [UInt8], inverted: Bool) -> [UInt8] {
        let pixelCount = cmyk.count / 4
        return [UInt8](unsafeUninitializedCapacity: pixelCount * 3) { rgb, initializedCount in
            for pixel in 0..<pixelCount {
                // With inverted samples, the stored value already is 255 - ink.
                let key = Int(inverted ? cmyk[pixel * 4 + 3] : 255 - cmyk[pixel * 4 + 3])
                for channel in 0..<3 {
                    let stored = cmyk[pixel * 4 + channel]
                    let inkless = Int(inverted ? stored : 255 - stored)
                    rgb[pixel * 3 + channel] = UInt8((inkless * key + 127) / 255)
                }
            }
            initializedCount = pixelCount * 3
        }
    }

    /// Returns whether the header contains an APP14 "Adobe" segment, which marks inverted CMYK samples.
    /// Pillow makes the same assumption.
    static func hasAdobeMarker(_ jpeg: UnsafeBufferPointer<UInt8>) -> Bool {
        var offset = 2
        while offset + 4 <= jpeg.count {
            guard jpeg[offset] == 0xFF else { return false }
            let marker = jpeg[offset + 1]
            if marker == 0xFF {
                offset += 1  // fill byte before a marker
                continue
            }
            if marker == 0xDA || marker == 0xD9 {
                return false  // start of scan or end of image: no header segments follow
            }
            let length = Int(jpeg[offset + 2]) << 8 | Int(jpeg[offset + 3])
            if marker == 0xEE, length >= 7, offset + 9 <= jpeg.count {
                let identifier = jpeg[(offset + 4)..<(offset + 9)]
                if identifier.elementsEqual("Adobe".utf8) { return true }
            }
            offset += 2 + length
        }
        return false
    }

    // MARK: PNG

    static func decodePNG(_ bytes: [UInt8], path: String, maxPixelCount: Int) throws -> RGBImage {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }

        // The simplified API reads only the header here, for the size checks before any allocation.
        return try bytes.withUnsafeBytes { png in
            guard png_image_begin_read_from_memory(&image, png.baseAddress, png.count) != 0 else {
                throw DataError.corruptImage(path: path, message: "libpng: " + pngMessage(&image))
            }
            let width = Int(image.width)
            let height = Int(image.height)
            try checkPixelCount(width: width, height: height, limit: maxPixelCount, path: path)
            try checkCompressedSize(width: width, height: height, fileSize: png.count,
                                    minimumBytes: minimumPNGSize(bytes, width: width, height: height), path: path)

            return try decodePixels(ofPNG: bytes, width: width, height: height, path: path)
        }
    }

    /// Decodes a PNG whose header passed the size checks with libpng's classic API, through
    /// `npid_png_read_rgb8`. The stored samples come out as Pillow's convert("RGB") gives them, so
    /// alpha is dropped rather than composited and gAMA is ignored. 16-bit samples v become
    /// round(v * 255 / 65535), while Pillow keeps the high byte, a difference of at most 1.
    ///
    /// libpng's simplified API, which reads the header above, is not used for the pixels. It converts
    /// files with a gAMA chunk to sRGB, and libpng 1.6.39 (Debian 12) scrambles the rows of 16-bit
    /// interlaced files when it scales them to 8 bits.
    static func decodePixels(ofPNG png: [UInt8], width: Int, height: Int, path: String) throws -> RGBImage {
        var message = [CChar](repeating: 0, count: 256)
        let pixels = try [UInt8](unsafeUninitializedCapacity: width * height * 3) { buffer, initializedCount in
            let status = npid_png_read_rgb8(png, png.count, buffer.baseAddress, buffer.count, &message, message.count)
            guard status == 0 else {
                let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                throw DataError.corruptImage(path: path, message: "libpng: " + (text.isEmpty ? "unknown error" : text))
            }
            initializedCount = buffer.count
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// Returns a lower bound on the size of a complete PNG with this header. Deflate compresses at most
    /// 1032 to 1 (a 258-byte match costs at least 2 bits), and the image data contains at least
    /// width × height × bits per pixel of samples.
    static func minimumPNGSize(_ png: [UInt8], width: Int, height: Int) -> Int {
        // libpng accepted the header, so IHDR is the first chunk: bit depth at byte 24, colour type at 25.
        let bitDepth = Int(png[24])
        let samplesPerPixel: Int
        switch png[25] {
        case 2: samplesPerPixel = 3
        case 4: samplesPerPixel = 2
        case 6: samplesPerPixel = 4
        default: samplesPerPixel = 1
        }
        let sampleBytes = (width * height).multipliedReportingOverflow(by: bitDepth * samplesPerPixel)
        return sampleBytes.overflow ? Int.max : sampleBytes.partialValue / 8 / 1032
    }

    static func pngMessage(_ image: inout png_image) -> String {
        let message = withUnsafeBytes(of: &image.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return message.isEmpty ? "unknown error" : message
    }
}
