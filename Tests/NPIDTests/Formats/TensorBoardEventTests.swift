import Foundation
import Testing
@testable import NPID

/// TensorBoard event files: CRC-32C against RFC 3720's test vectors, the TFRecord framing
/// and the hand-written protobuf bytes against values computed independently.
@Suite struct TensorBoardEventTests {
    // MARK: CRC-32C

    /// RFC 3720 appendix B.4 lists these 32-byte inputs and their CRC-32C; "123456789" is
    /// the usual check value of the Castagnoli polynomial.
    @Test(arguments: [
        (bytes: [UInt8](repeating: 0, count: 32), crc: UInt32(0x8A91_36AA)),
        (bytes: [UInt8](repeating: 0xFF, count: 32), crc: UInt32(0x62A8_AB43)),
        (bytes: (0..<32).map(UInt8.init), crc: UInt32(0x46DD_794E)),
        (bytes: (0..<32).reversed().map(UInt8.init), crc: UInt32(0x113F_DB5C)),
        (bytes: Array("123456789".utf8), crc: UInt32(0xE306_9283)),
    ])
    func crc32cMatchesRFC3720(vector: (bytes: [UInt8], crc: UInt32)) {
        #expect(CRC32C.checksum(vector.bytes) == vector.crc)
    }

    @Test func maskRotatesAndAddsConstant() {
        // ((crc >> 15) | (crc << 17)) + 0xA282EAD8, modulo 2^32.
        #expect(CRC32C.masked(0) == 0xA282_EAD8)
        #expect(CRC32C.masked(0xFFFF_FFFF) == 0xA282_EAD7)
        #expect(CRC32C.masked(0x8A91_36AA) == 0x0FD7_FFFA)
        #expect(CRC32C.masked(0xE306_9283) == 0xC78A_B0E5)
    }

    // MARK: protobuf

    @Test func fileVersionEventBytes() {
        // Field 1 (wall_time, fixed64): key 0x09, then 1.5 as a little-endian double.
        // Field 3 (file_version, length-delimited): key 0x1a, length 13, "brain.Event:2".
        let expected: [UInt8] = [0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F, 0x1A, 0x0D] + Array("brain.Event:2".utf8)

        #expect(TensorBoardEvent.fileVersionEvent(wallTime: 1.5) == expected)
    }

    @Test func scalarEventBytes() {
        // Summary.Value: tag (field 1) "loss", simple_value (field 2, fixed32) 0.25.
        let value: [UInt8] = [0x0A, 0x04] + Array("loss".utf8) + [0x15, 0x00, 0x00, 0x80, 0x3E]
        // Summary: value (field 1, length-delimited).
        let summary: [UInt8] = [0x0A, UInt8(value.count)] + value
        // Event: wall_time 1.5, step (field 2, varint) 3, summary (field 5, length-delimited).
        let expected: [UInt8] = [0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F, 0x10, 0x03, 0x2A, UInt8(summary.count)] + summary

        #expect(TensorBoardEvent.scalarEvent(wallTime: 1.5, step: 3, scalars: [("loss", 0.25)]) == expected)
    }

    @Test func varintUsesSevenBitGroups() {
        var writer = ProtobufWriter()
        writer.varint(300)
        writer.varint(0)
        writer.varint(UInt64(bitPattern: -1))

        // 300 = 0b10_0101100: low group 0x2c with the continuation bit, then 0x02.
        // -1 as int64 is ten bytes: nine 0xff and a final 0x01.
        #expect(writer.bytes == [0xAC, 0x02, 0x00] + [UInt8](repeating: 0xFF, count: 9) + [0x01])
    }

    // MARK: records

    @Test func recordFramesPayload() {
        let payload = TensorBoardEvent.fileVersionEvent(wallTime: 1.5)

        let record = TensorBoardEvent.record(payload)

        // Expected checksums from a bitwise CRC-32C written separately in Python:
        // masked(crc32c(uint64 24 little-endian)) = 0x224b7fa3, masked(crc32c(payload)) = 0x6c64282a.
        #expect(record.count == 8 + 4 + payload.count + 4)
        #expect(Array(record[0..<8]) == [24, 0, 0, 0, 0, 0, 0, 0])
        #expect(Array(record[8..<12]) == [0xA3, 0x7F, 0x4B, 0x22])
        #expect(Array(record[12..<36]) == payload)
        #expect(Array(record[36..<40]) == [0x2A, 0x28, 0x64, 0x6C])
    }

    @Test func writerStartsWithFileVersion() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let directory = folder.appendingPathComponent("tensorboard").path
        let now = Date(timeIntervalSince1970: 1_700_000_000.25)

        let writer = try TensorBoardWriter(directory: directory, now: now)
        try writer.add(EpochMetrics(epoch: 2, loss: 4.5, lr: 0.03, imagesPerSecond: 812, knnTop1: 41.25, knnTop5: nil,
                                    seconds: 3), now: now)

        let name = URL(fileURLWithPath: writer.path).lastPathComponent
        #expect(name.hasPrefix("events.out.tfevents.1700000000."))
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: writer.path)))
        let records = try TensorBoardRecords.split(bytes)
        #expect(records.count == 2)
        #expect(records.first == TensorBoardEvent.fileVersionEvent(wallTime: now.timeIntervalSince1970))
        // knn_top5 is absent because it was not measured.
        let scalars: [(tag: String, value: Float)] = [("loss", 4.5), ("lr", 0.03), ("knn_top1", 41.25), ("images_per_s", 812)]
        #expect(records.last == TensorBoardEvent.scalarEvent(wallTime: now.timeIntervalSince1970, step: 2, scalars: scalars))
    }

    @Test func writerReplacesOlderEventFiles() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let directory = folder.appendingPathComponent("tensorboard").path
        let epochs = (1...3).map { EpochMetrics(epoch: $0, loss: 5 - Double($0), lr: 0.03, imagesPerSecond: 100, seconds: 2) }
        let old = try TensorBoardWriter(directory: directory, now: Date(timeIntervalSince1970: 1_700_000_000))
        for metrics in epochs {
            try old.add(metrics)
        }
        try Data("kept".utf8).write(to: URL(fileURLWithPath: directory + "/notes.txt"))
        let now = Date(timeIntervalSince1970: 1_700_000_100.5)

        // A run resumed after epoch 1 rewrites the folder with epochs 1 and 2.
        let writer = try TensorBoardWriter(directory: directory, replacingWith: Array(epochs[0..<2]), now: now)
        try writer.add(epochs[2], now: now)

        let name = URL(fileURLWithPath: writer.path).lastPathComponent
        #expect(name.hasPrefix("events.out.tfevents.1700000100."))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == [name, "notes.txt"])
        let records = try TensorBoardRecords.split([UInt8](try Data(contentsOf: URL(fileURLWithPath: writer.path))))
        try #require(records.count == 4)
        #expect(records[0] == TensorBoardEvent.fileVersionEvent(wallTime: now.timeIntervalSince1970))
        for (record, metrics) in zip(records.dropFirst(), epochs) {
            let scalars: [(tag: String, value: Float)] = [("loss", Float(metrics.loss)), ("lr", 0.03), ("images_per_s", 100)]
            #expect(record == TensorBoardEvent.scalarEvent(wallTime: now.timeIntervalSince1970, step: Int64(metrics.epoch),
                                                            scalars: scalars))
        }
    }
}

/// Splits TFRecord bytes into payloads, checking both masked CRC-32C of every record.
enum TensorBoardRecords {
    static func split(_ bytes: [UInt8]) throws -> [[UInt8]] {
        var records: [[UInt8]] = []
        var offset = 0
        while offset < bytes.count {
            guard offset + 12 <= bytes.count else { throw FormatsCheckError("truncated record header at byte \(offset)") }
            let lengthBytes = Array(bytes[offset..<(offset + 8)])
            let length = Int(lengthBytes.reversed().reduce(UInt64(0)) { ($0 << 8) | UInt64($1) })
            guard littleEndian(bytes[(offset + 8)..<(offset + 12)]) == CRC32C.masked(CRC32C.checksum(lengthBytes)) else {
                throw FormatsCheckError("bad length checksum at byte \(offset)")
            }
            let start = offset + 12
            guard start + length + 4 <= bytes.count else { throw FormatsCheckError("truncated record at byte \(offset)") }
            let payload = Array(bytes[start..<(start + length)])
            guard littleEndian(bytes[(start + length)..<(start + length + 4)]) == CRC32C.masked(CRC32C.checksum(payload)) else {
                throw FormatsCheckError("bad payload checksum at byte \(offset)")
            }
            records.append(payload)
            offset = start + length + 4
        }
        return records
    }

    private static func littleEndian(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.reversed().reduce(UInt32(0)) { ($0 << 8) | UInt32($1) }
    }
}

struct FormatsCheckError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
