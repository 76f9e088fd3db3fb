import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The MD5 message digest (RFC 1321), fed in pieces.
///
/// Used only to compare downloaded archives with their published checksums. MD5 is not collision
/// resistant, so a match shows that a file arrived intact, not that it is authentic. Foundation on Linux
/// has no CryptoKit, hence this small implementation.
public struct MD5: Sendable {
    private var state: (UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476)
    /// Bytes of an incomplete 64-byte block, waiting for more input.
    private var pending: [UInt8] = []
    private var byteCount: UInt64 = 0

    /// K[i] = floor(|sin(i + 1)| · 2^32), the additive constants of RFC 1321, section 3.4.
    private static let constants: [UInt32] = (0..<64).map { UInt32(abs(sin(Double($0 + 1))) * 4_294_967_296) }
    private static let shifts: [UInt32] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21]

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        byteCount &+= UInt64(bytes.count)
        var offset = 0

        if !pending.isEmpty {
            let needed = 64 - pending.count
            let taken = min(needed, bytes.count)
            pending.append(contentsOf: bytes[0..<taken])
            offset = taken
            guard pending.count == 64 else { return }
            pending.withUnsafeBytes { processBlock($0.baseAddress!) }
            pending.removeAll(keepingCapacity: true)
        }
        while bytes.count - offset >= 64 {
            processBlock(bytes.baseAddress! + offset)
            offset += 64
        }
        if offset < bytes.count {
            pending.append(contentsOf: bytes[offset...])
        }
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Returns the 16-byte digest; the value itself is left unchanged, so more input may follow.
    public func finalize() -> [UInt8] {
        var copy = self
        // Padding: a 1 bit, zeros up to 56 bytes modulo 64, then the message length in bits (little-endian).
        let bitCount = byteCount &* 8
        var padding: [UInt8] = [0x80]
        let remainder = (pending.count + 1) % 64
        padding += [UInt8](repeating: 0, count: remainder <= 56 ? 56 - remainder : 120 - remainder)
        for shift in stride(from: 0, to: 64, by: 8) {
            padding.append(UInt8(truncatingIfNeeded: bitCount >> UInt64(shift)))
        }
        let savedCount = copy.byteCount
        copy.update(padding)
        copy.byteCount = savedCount

        var digest: [UInt8] = []
        for word in [copy.state.0, copy.state.1, copy.state.2, copy.state.3] {
            for shift in stride(from: 0, to: 32, by: 8) {
                digest.append(UInt8(truncatingIfNeeded: word >> UInt32(shift)))
            }
        }
        return digest
    }

    /// Returns the digest as 32 lowercase hexadecimal digits, the form checksums are published in.
    public func hexDigest() -> String {
        finalize().map { String(format: "%02x", $0) }.joined()
    }

    public static func hexDigest(of bytes: [UInt8]) -> String {
        var md5 = MD5()
        md5.update(bytes)
        return md5.hexDigest()
    }

    /// Returns the hexadecimal digest of the file at `path`, read in 1 MiB pieces.
    public static func hexDigest(ofFileAt path: String) throws -> String {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            throw DataError.unreadableFile(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(descriptor) }

        var md5 = MD5()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = read(descriptor, buffer.baseAddress!, buffer.count)
            if count < 0 {
                if errno == EINTR { continue }
                throw DataError.unreadableFile(path: path, reason: String(cString: strerror(errno)))
            }
            if count == 0 { break }
            md5.update(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
        return md5.hexDigest()
    }

    /// One application of the compression function to a 64-byte block (RFC 1321, section 3.4).
    private mutating func processBlock(_ block: UnsafeRawPointer) {
        var a = state.0
        var b = state.1
        var c = state.2
        var d = state.3

        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 16) { message in
            for index in 0..<16 {
                message[index] = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self))
            }
            for step in 0..<64 {
                let round = step >> 4
                var mixed: UInt32
                let wordIndex: Int
                switch round {
                case 0:
                    mixed = (b & c) | (~b & d)
                    wordIndex = step
                case 1:
                    mixed = (d & b) | (~d & c)
                    wordIndex = (5 &* step &+ 1) & 15
                case 2:
                    mixed = b ^ c ^ d
                    wordIndex = (3 &* step &+ 5) & 15
                default:
                    mixed = c ^ (b | ~d)
                    wordIndex = (7 &* step) & 15
                }
                mixed = mixed &+ a &+ Self.constants[step] &+ message[wordIndex]
                let shift = Self.shifts[round * 4 + (step & 3)]
                a = d
                d = c
                c = b
                b = b &+ ((mixed << shift) | (mixed >> (32 - shift)))
            }
        }

        state.0 &+= a
        state.1 &+= b
        state.2 &+= c
        state.3 &+= d
    }
}
