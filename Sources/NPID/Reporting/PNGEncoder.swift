import CImageCodecs

/// A PNG that libpng could not encode, with libpng's own message.
public struct PNGEncodingError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// 8-bit RGB PNG encoding through libpng's simplified write API.
public enum PNGEncoder {
    /// Encodes the image as an 8-bit RGB PNG without interlacing or ancillary chunks.
    public static func encode(_ image: RGBImage) throws -> [UInt8] {
        try encode(image, initialCapacity: image.pixels.count + image.pixels.count / 8 + 1024)
    }

    /// Encodes with a first output buffer of `initialCapacity` bytes. Tests pass a tiny one to
    /// reach the retry.
    static func encode(_ image: RGBImage, initialCapacity: Int) throws -> [UInt8] {
        // libpng takes the row stride as a 32-bit count of components.
        guard image.width <= Int(Int32.max) / 3, image.height <= Int(Int32.max) else {
            throw PNGEncodingError(description:
                "cannot encode a \(image.width)x\(image.height) image as PNG: it exceeds libpng's 2^31 component row limit")
        }

        // libpng reports the exact size when the first buffer is too small, and the second
        // attempt uses it. The default first size fits nearly every image.
        var capacity = initialCapacity
        for _ in 0..<2 {
            var control = makeControl(for: image)
            var output = [UInt8](repeating: 0, count: capacity)
            var byteCount = png_alloc_size_t(capacity)
            let succeeded = output.withUnsafeMutableBytes { destination in
                image.pixels.withUnsafeBytes { pixels in
                    png_image_write_to_memory(&control, destination.baseAddress, &byteCount, 0, pixels.baseAddress, 0, nil)
                }
            }
            let message = libpngMessage(control)
            png_image_free(&control)

            if succeeded != 0 {
                output.removeSubrange(Int(byteCount)...)
                return output
            }
            guard Int(byteCount) > capacity else {
                throw PNGEncodingError(description:
                    "libpng failed to encode a \(image.width)x\(image.height) image as PNG: \(message)")
            }
            capacity = Int(byteCount)
        }
        throw PNGEncodingError(description:
            "libpng failed to encode a \(image.width)x\(image.height) image as PNG: the output size changed between attempts")
    }

    /// Writes the image as a PNG file atomically: the previous file stays intact unless the
    /// complete new one is on disk. Throws `PNGEncodingError` or `FileIOError`.
    public static func write(_ image: RGBImage, to path: String) throws {
        try AtomicFile.write(encode(image), to: path)
    }

    private static func makeControl(for image: RGBImage) -> png_image {
        var control = png_image()
        control.version = png_uint_32(PNG_IMAGE_VERSION)
        control.width = png_uint_32(image.width)
        control.height = png_uint_32(image.height)
        control.format = png_uint_32(PNG_FORMAT_RGB)
        return control
    }

    private static func libpngMessage(_ control: png_image) -> String {
        withUnsafeBytes(of: control.message) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return bytes.isEmpty ? "no message" : String(decoding: bytes, as: UTF8.self)
        }
    }
}
