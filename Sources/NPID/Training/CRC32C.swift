/// CRC-32C (Castagnoli polynomial 0x1EDC6F41, bit-reflected, initial value and final XOR
/// 0xFFFFFFFF), the checksum that iSCSI (RFC 3720), ext4 metadata, LevelDB and TFRecord files
/// use to detect damaged data. Checkpoints store it so that a flipped bit or a file spliced
/// from two writes is rejected instead of loaded.
///
/// Computed eight bytes at a time with eight lookup tables ("slicing-by-8").
struct CRC32C {
    /// The running register, before the final XOR.
    private var register: UInt32 = 0xFFFF_FFFF

    init() {}

    /// The checksum of all bytes passed to `update` so far.
    var value: UInt32 { ~register }

    mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    mutating func update(_ text: String) {
        update(Array(text.utf8))
    }

    mutating func update(_ buffer: UnsafeRawBufferPointer) {
        guard let base = buffer.baseAddress else {
            return
        }
        var crc = register
        var offset = 0
        let count = buffer.count
        Self.tables.withUnsafeBufferPointer { table in
            while offset + 8 <= count {
                let word = UInt64(littleEndian: (base + offset).loadUnaligned(as: UInt64.self))
                let low = crc ^ UInt32(truncatingIfNeeded: word)
                let high = UInt32(truncatingIfNeeded: word >> 32)
                crc = table[7 * 256 + Int(low & 0xFF)]
                    ^ table[6 * 256 + Int((low >> 8) & 0xFF)]
                    ^ table[5 * 256 + Int((low >> 16) & 0xFF)]
                    ^ table[4 * 256 + Int(low >> 24)]
                    ^ table[3 * 256 + Int(high & 0xFF)]
                    ^ table[2 * 256 + Int((high >> 8) & 0xFF)]
                    ^ table[1 * 256 + Int((high >> 16) & 0xFF)]
                    ^ table[Int(high >> 24)]
                offset += 8
            }
            while offset < count {
                let byte = base.load(fromByteOffset: offset, as: UInt8.self)
                crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
                offset += 1
            }
        }
        register = crc
    }

    /// Returns the checksum of `bytes` in one call.
    static func checksum<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        var crc = CRC32C()
        crc.update(Array(bytes))
        return crc.value
    }

    /// Returns TFRecord's masked checksum: rotated right by 15 bits plus 0xA282EAD8, so that
    /// a CRC stored inside checksummed data does not weaken the outer checksum.
    static func masked(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    /// Table k, at `k * 256`, maps a byte to its CRC contribution when k more zero bytes follow it.
    private static let tables: [UInt32] = {
        let reflectedPolynomial: UInt32 = 0x82F6_3B78
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ reflectedPolynomial : crc >> 1
            }
            tables[byte] = crc
        }
        for slice in 1..<8 {
            for byte in 0..<256 {
                let previous = tables[(slice - 1) * 256 + byte]
                tables[slice * 256 + byte] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
            }
        }
        return tables
    }()
}
