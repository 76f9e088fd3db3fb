import Testing
@testable import NPID

/// Checks the serialized bytes against a layout computed by hand from the format description,
/// so the writer is proven to follow the format rather than merely to agree with its reader.
@Suite struct SafetensorsExactBytesTests {
    @Test func tinyFileMatchesHandComputedBytes() throws {
        let tensors = [
            SafetensorsTensor(name: "a", shape: [2], values: [Float(1), Float(-2)]),
            SafetensorsTensor(name: "bias", shape: [], values: [UInt8(7)]),
        ]

        let bytes = try Safetensors.serialize(tensors, metadata: ["format": "pt"])

        let json = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
            + #""bias":{"dtype":"U8","shape":[],"data_offsets":[8,9]}}"#
        #expect(json.utf8.count == 139)
        // 139 bytes of JSON plus 5 spaces make a 144-byte header, a multiple of 8.
        let lengthPrefix: [UInt8] = [144, 0, 0, 0, 0, 0, 0, 0]
        let padding = [UInt8](repeating: 0x20, count: 5)
        // 1.0f is 0x3F800000 and -2.0f is 0xC0000000, stored little-endian, then the U8 scalar 7.
        let data: [UInt8] = [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0, 0x07]
        let expected = lengthPrefix + Array(json.utf8) + padding + data

        #expect(bytes.count == 8 + 144 + 9)
        #expect(bytes == expected)
    }

    @Test func fileOnDiskMatchesSerializedBytes() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        let path = folder + "/tiny.safetensors"
        let tensors = [SafetensorsTensor(name: "x", shape: [3], values: [Int64](arrayLiteral: 1, 2, 3))]

        try Safetensors.write(tensors, metadata: ["k": "v"], to: path)

        #expect(FormatsTestFiles.readBytes(path) == (try Safetensors.serialize(tensors, metadata: ["k": "v"])))
    }

    @Test func headerEscapesStrings() throws {
        let tensors = [SafetensorsTensor(name: "a\"b\\c\u{01}", dtype: .u8, shape: [], bytes: [0])]
        let bytes = try Safetensors.serialize(tensors)
        let header = String(decoding: bytes[8...], as: UTF8.self)

        #expect(header.hasPrefix(#"{"a\"b\\c\u0001":{"dtype":"U8""#))
    }
}
