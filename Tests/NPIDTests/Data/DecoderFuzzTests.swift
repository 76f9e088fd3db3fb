import CImageCodecs
import Foundation
import Testing
@testable import NPID

/// Randomised mutations of valid JPEG and PNG files: every decode must end in an image or a `DataError`,
/// never a crash, another error type or a huge allocation.
///
/// NPID_FUZZ_ITERATIONS sets the number of mutated files (default 10,000, under a second in a debug build).
@Suite struct DecoderFuzzTests {
    static let defaultIterations = 10_000

    /// Valid files of every kind the decoder handles, small so that each decode is quick.
    static func seedFiles() -> [(name: String, bytes: [UInt8])] {
        let image = TestImages.noise(width: 24, height: 16, seed: 21)
        let gray = (0..<(24 * 16)).map { UInt8($0 % 251) }
        let cmyk = (0..<(16 * 16 * 4)).map { UInt8(($0 * 37) % 256) }
        let deepRow: [UInt8] = (0..<(6 * 4)).flatMap { (sample: Int) -> [UInt8] in [UInt8(sample * 10), UInt8(255 - sample)] }
        return [
            ("baseline.jpg", TestImages.encodeJPEG(image, quality: 90, subsampling: TJSAMP_420)),
            ("progressive.jpg", TestImages.encodeJPEG(image, quality: 90,
                                                      flags: TJFLAG_ACCURATEDCT | TJFLAG_PROGRESSIVE)),
            ("gray.jpg", TestImages.encodeJPEG(width: 24, height: 16, pixels: gray, pixelFormat: TJPF_GRAY,
                                               subsampling: TJSAMP_GRAY)),
            ("ycck.jpg", TestImages.encodeJPEG(width: 16, height: 16, pixels: cmyk, pixelFormat: TJPF_CMYK)),
            ("rgb.png", TestImages.encodePNG(width: 24, height: 16, format: PNG_FORMAT_RGB, pixels: image.pixels)),
            ("palette.png", TestImages.encodePNG(width: 4, height: 4, format: PNG_FORMAT_RGB | PNG_FORMAT_FLAG_COLORMAP,
                                                 pixels: (0..<16).map { UInt8($0 % 3) },
                                                 colormap: [0, 0, 0, 255, 0, 0, 0, 255, 0], colormapEntries: 3)),
            ("gray-alpha.png", TestImages.encodePNG(width: 8, height: 8, format: PNG_FORMAT_FLAG_ALPHA,
                                                    pixels: (0..<128).map { UInt8($0 * 2 % 256) })),
            ("deep-rgba.png", TestImages.handWrittenPNG(width: 6, height: 2, bitDepth: 16, colorType: 6,
                                                        rows: [deepRow, deepRow.reversed()])),
        ]
    }

    @Test func mutatedFilesEndInImageOrDataError() throws {
        let iterations = ProcessInfo.processInfo.environment["NPID_FUZZ_ITERATIONS"].flatMap { Int($0) }
            ?? Self.defaultIterations
        let seeds = Self.seedFiles()
        for seed in seeds {
            // Every seed decodes before mutation, so the errors below come from the mutations.
            #expect(throws: Never.self, "seed \(seed.name)") { try ImageDecoder.decode(bytes: seed.bytes, path: seed.name) }
        }

        var random = SampleRandom(seed: 2024)
        var errorCount = 0
        var imageCount = 0
        var otherErrors: [String] = []
        let peakBefore = Self.peakResidentKilobytes()
        let virtualBefore = Self.peakVirtualKilobytes()
        let started = Date()

        for iteration in 0..<iterations {
            let seed = seeds[iteration % seeds.count]
            let mutated = Self.mutate(seed.bytes, isPNG: seed.name.hasSuffix(".png"), random: &random)
            do {
                let image = try ImageDecoder.decode(bytes: mutated, path: seed.name)
                #expect(image.pixels.count == image.width * image.height * 3, "\(seed.name) iteration \(iteration)")
                #expect(image.width * image.height <= ImageDecoder.maxPixelCount)
                imageCount += 1
            } catch is DataError {
                errorCount += 1
            } catch {
                otherErrors.append("\(seed.name) iteration \(iteration): \(error)")
            }
        }

        let peakGrowthKilobytes = Self.peakResidentKilobytes() - peakBefore
        let virtualGrowthKilobytes = Self.peakVirtualKilobytes() - virtualBefore
        print("decoder fuzz: \(iterations) mutated files, \(errorCount) DataError, \(imageCount) still decoded, "
              + "peak memory +\(peakGrowthKilobytes / 1024) MiB resident, +\(virtualGrowthKilobytes / 1024) MiB virtual, \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        #expect(otherErrors.isEmpty, "\(otherErrors.prefix(5))")
        #expect(errorCount + imageCount == iterations)
        // Most mutations break a file, although a flipped bit inside the entropy-coded data often still decodes.
        #expect(errorCount * 2 > iterations)
        // Peak memory of the whole process, which tests running in parallel share, grew by less than 1 GiB.
        // The virtual size also counts pixel buffers that a failed decode allocated but never wrote. Without
        // the decoder's size checks, headers that promise gigapixels in a few kilobytes grew it by 2.3 GiB.
        #expect(peakGrowthKilobytes < 1 << 20)
        #expect(virtualGrowthKilobytes < 1 << 20)
    }

    /// Applies one to three random mutations. PNG chunk checksums are repaired half of the time, so that
    /// mutations also reach the code behind libpng's CRC check.
    static func mutate(_ original: [UInt8], isPNG: Bool, random: inout SampleRandom) -> [UInt8] {
        var bytes = original
        for _ in 0...random.nextInt(below: 3) {
            guard bytes.count > 8 else { break }
            switch random.nextInt(below: 6) {
            case 0:
                // Flip 1 to 8 bits, leaving the signature alone three times in four.
                let start = random.nextInt(below: 4) == 0 ? 0 : 8
                for _ in 0...random.nextInt(below: 8) {
                    bytes[start + random.nextInt(below: bytes.count - start)] ^= UInt8(1) << UInt8(random.nextInt(below: 8))
                }
            case 1:
                bytes.removeSubrange((1 + random.nextInt(below: bytes.count - 1))...)
            case 2:
                declareHugeSize(&bytes, isPNG: isPNG, random: &random)
            case 3:
                // Overwrite a run of up to 16 bytes with random values.
                let start = 2 + random.nextInt(below: bytes.count - 2)
                for offset in start..<min(bytes.count, start + 1 + random.nextInt(below: 16)) {
                    bytes[offset] = UInt8(truncatingIfNeeded: random.next())
                }
            case 4:
                corruptLength(&bytes, isPNG: isPNG, random: &random)
            default:
                // Repeat a slice of the file at another place.
                let start = random.nextInt(below: bytes.count)
                let slice = bytes[start..<min(bytes.count, start + 1 + random.nextInt(below: 64))]
                bytes.insert(contentsOf: slice, at: 2 + random.nextInt(below: bytes.count - 2))
            }
        }
        if isPNG && random.nextInt(below: 2) == 0 {
            TestImages.fixPNGChecksums(&bytes)
        }
        return bytes
    }

    /// Writes random large dimensions into the JPEG frame header or the PNG IHDR chunk.
    static func declareHugeSize(_ bytes: inout [UInt8], isPNG: Bool, random: inout SampleRandom) {
        if isPNG {
            guard bytes.count >= 24 else { return }
            for offset in [16, 20] {
                let value = UInt32(truncatingIfNeeded: random.next()) >> UInt32(random.nextInt(below: 16))
                for byte in 0..<4 {
                    bytes[offset + byte] = UInt8(truncatingIfNeeded: value >> UInt32(24 - 8 * byte))
                }
            }
            return
        }
        guard let frame = (2..<max(2, bytes.count - 9)).first(where: {
            bytes[$0] == 0xFF && (bytes[$0 + 1] == 0xC0 || bytes[$0 + 1] == 0xC2)
        }) else { return }
        for offset in [frame + 5, frame + 7] {
            let value = 1 + random.nextInt(below: 65_535)
            bytes[offset] = UInt8(value >> 8)
            bytes[offset + 1] = UInt8(value & 0xFF)
        }
    }

    /// Sets a random PNG chunk length or JPEG segment length to a random, often huge, value.
    static func corruptLength(_ bytes: inout [UInt8], isPNG: Bool, random: inout SampleRandom) {
        if isPNG {
            var offsets: [Int] = []
            var offset = 8
            while offset + 8 <= bytes.count {
                offsets.append(offset)
                let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
                offset += 12 + length
            }
            guard !offsets.isEmpty else { return }
            let chunk = offsets[random.nextInt(below: offsets.count)]
            let value = UInt32(truncatingIfNeeded: random.next()) >> UInt32(random.nextInt(below: 32))
            for byte in 0..<4 {
                bytes[chunk + byte] = UInt8(truncatingIfNeeded: value >> UInt32(24 - 8 * byte))
            }
            return
        }
        let markers = (2..<max(2, bytes.count - 3)).filter { bytes[$0] == 0xFF && bytes[$0 + 1] >= 0xC0 && bytes[$0 + 1] != 0xFF }
        guard !markers.isEmpty else { return }
        let marker = markers[random.nextInt(below: markers.count)]
        bytes[marker + 2] = UInt8(truncatingIfNeeded: random.next())
        bytes[marker + 3] = UInt8(truncatingIfNeeded: random.next())
    }

    /// Returns the peak virtual memory size of this process so far (VmPeak of /proc/self/status), in KiB.
    /// Unlike the resident size it counts buffers that were allocated but never written.
    static func peakVirtualKilobytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmPeak:") }) else {
            return 0
        }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
    }

    /// Returns the peak resident set size of this process so far, in KiB (Linux reports ru_maxrss in KiB).
    static func peakResidentKilobytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss
    }
}
