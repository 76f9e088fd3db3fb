import Testing
@testable import NPID

/// CRC-32C must match the published check values and a bit-at-a-time loop written from the
/// definition, whatever the length and however the input is split between updates.
@Suite struct CRC32CTests {
    /// Computes the checksum from the definition, one bit at a time through the reflected polynomial.
    static func bitwiseReference(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1
            }
        }
        return ~crc
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var crc = CRC32C()
        crc.update(bytes)
        return crc.value
    }

    @Test func publishedCheckValues() {
        // The catalogue check value for "123456789", and the iSCSI test vectors of RFC 3720, B.4.
        #expect(Self.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(Self.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(Self.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(Self.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(Self.checksum([]) == 0)
    }

    @Test func matchesBitwiseLoopAtEveryLength() {
        var generator = CLIRandom(seed: 11)
        for length in 0..<80 {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            #expect(Self.checksum(bytes) == Self.bitwiseReference(bytes), "length \(length)")
        }
    }

    @Test func splitUpdatesGiveSameValue() {
        var generator = CLIRandom(seed: 12)
        let bytes = (0..<1000).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let whole = Self.checksum(bytes)
        #expect(whole == Self.bitwiseReference(bytes))

        for cut in [0, 1, 7, 8, 9, 500, 999, 1000] {
            var crc = CRC32C()
            crc.update(Array(bytes[..<cut]))
            crc.update(Array(bytes[cut...]))
            #expect(crc.value == whole, "split at \(cut)")
        }
    }
}
