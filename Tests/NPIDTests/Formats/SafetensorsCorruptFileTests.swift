import Testing
@testable import NPID

/// Damaged and foreign files must throw a `SafetensorsError` that names the file, never crash
/// and never allocate what a corrupt header claims.
@Suite struct SafetensorsCorruptFileTests {
    /// Builds a file from a header string and data bytes, with a correct length prefix unless
    /// `declaredLength` overrides it.
    func file(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
        let json = Array(header.utf8)
        let length = declaredLength ?? UInt64(json.count)
        return withUnsafeBytes(of: length.littleEndian) { [UInt8]($0) } + json + data
    }

    func parseError(_ bytes: [UInt8]) -> String? {
        do {
            _ = try Safetensors.parse(bytes, name: "/r/checkpoint.safetensors")
            return nil
        } catch let error as SafetensorsError {
            return error.description
        } catch {
            return "unexpected error type: \(error)"
        }
    }

    @Test func truncationAtEveryByteThrows() throws {
        let tensors = [
            SafetensorsTensor(name: "w", shape: [2, 2], values: [Float](arrayLiteral: 1, 2, 3, 4)),
            SafetensorsTensor(name: "n", shape: [], values: [Int64(5)]),
        ]
        let bytes = try Safetensors.serialize(tensors, metadata: ["epoch": "3"])
        #expect(try Safetensors.parse(bytes)["w"] == tensors[0])

        for length in 0..<bytes.count {
            let message = parseError(Array(bytes[0..<length]))
            #expect(message != nil, "a file cut to \(length) of \(bytes.count) bytes was accepted")
            #expect(message?.hasPrefix("safetensors file /r/checkpoint.safetensors ") == true, "\(message ?? "")")
        }
    }

    @Test func singleByteCorruptionNeverCrashes() throws {
        let tensors = [
            SafetensorsTensor(name: "w", shape: [2, 3], values: [Float](arrayLiteral: 1, 2, 3, 4, 5, 6)),
            SafetensorsTensor(name: "index", shape: [], values: [Int64(9)]),
        ]
        let bytes = try Safetensors.serialize(tensors, metadata: ["epoch": "3"])

        // Every byte replaced by a few values that break digits, quotes, brackets and lengths.
        // Each result must either parse into a consistent file or throw SafetensorsError.
        var rejected = 0
        for position in bytes.indices {
            for replacement: UInt8 in [0x00, 0x22, 0x39, 0x5D, 0xFF] where replacement != bytes[position] {
                var damaged = bytes
                damaged[position] = replacement
                if let message = parseError(damaged) {
                    #expect(message.hasPrefix("safetensors file /r/checkpoint.safetensors "), "\(message)")
                    rejected += 1
                } else {
                    let contents = try Safetensors.parse(damaged)
                    let total = contents.tensors.values.reduce(0) { $0 + $1.bytes.count }
                    #expect(total <= damaged.count)
                }
            }
        }
        #expect(rejected > bytes.count)
    }

    @Test func truncatedFileOnDiskNamesFileAndSizes() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        let path = folder + "/checkpoint.safetensors"
        let tensor = SafetensorsTensor(name: "bank", shape: [1000], values: [Float](repeating: 1, count: 1000))
        let bytes = try Safetensors.serialize([tensor])
        FormatsTestFiles.writeBytes(Array(bytes.dropLast(1500)), to: path)

        let error = #expect(throws: SafetensorsError.self) {
            try Safetensors.read(contentsOf: path)
        }
        #expect(error?.description == "safetensors file \(path) is truncated: its header declares "
            + "4.0 kB (4000 bytes) of tensor data but the file contains 2.5 kB (2500 bytes)")
    }

    @Test func hugeHeaderLengthThrowsWithoutAllocating() {
        let bytes = file(header: "{}", declaredLength: 1 << 40)
        #expect(parseError(bytes) == "safetensors file /r/checkpoint.safetensors is not a safetensors file or is corrupt: "
            + "its first 8 bytes declare a header of 1.1 TB (1099511627776 bytes), more than the "
            + "100.0 MB (100000000 bytes) limit")
    }

    @Test func foreignFileIsRejected() {
        // The first bytes of a PNG file read as an absurd header length.
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]
        #expect(parseError(png)?.contains("is not a safetensors file or is corrupt") == true)
        #expect(parseError([1, 2, 3]) == "safetensors file /r/checkpoint.safetensors is truncated or not a "
            + "safetensors file: it contains 3 bytes, fewer than the 8-byte header length")
    }

    @Test func headerLongerThanFileIsTruncated() {
        let bytes = file(header: "{}", declaredLength: 40)
        #expect(parseError(bytes) == "safetensors file /r/checkpoint.safetensors is truncated: its first 8 bytes "
            + "declare a header of 40 bytes but only 2 bytes follow them")
    }

    @Test func invalidJSONIsRejected() {
        let cases: [(String, String)] = [
            (#"{"a":"#, "invalid JSON at offset 5 of the header: expected a value but the header ended"),
            (#"{"a":{"dtype":"F32"}"#, "invalid JSON at offset 20 of the header: expected ',' or '}' but the header ended"),
            ("[1,2]", "the JSON is not an object"),
            (#"{"a":1} x"#, "invalid JSON at offset 8 of the header: unexpected data after the JSON value"),
            (#"{"a":01}"#, "invalid JSON at offset 6 of the header: expected ',' or '}'"),
            ("{\"a\u{01}\":1}", "invalid JSON at offset 3 of the header: control character in a string"),
            (#"{"\ud800":1}"#, "invalid JSON at offset 8 of the header: unpaired UTF-16 surrogate"),
            (String(repeating: "[", count: 100_000), "invalid JSON at offset 64 of the header: nested deeper than 64 levels"),
            (#"{"__metadata__":{"a":1}}"#, "metadata value 'a' is not a string"),
            (#"{"__metadata__":[]}"#, "\"__metadata__\" is not a JSON object"),
        ]
        for (header, problem) in cases {
            #expect(parseError(file(header: header)) == "safetensors file /r/checkpoint.safetensors has an invalid header: \(problem)",
                    "header \(header.prefix(40))")
        }
    }

    @Test func invalidUTF8IsRejected() {
        let json: [UInt8] = Array(#"{""#.utf8) + [0xFF] + Array(#"":1}"#.utf8)
        let bytes = withUnsafeBytes(of: UInt64(json.count).littleEndian) { [UInt8]($0) } + json
        #expect(parseError(bytes) == "safetensors file /r/checkpoint.safetensors has an invalid header: "
            + "invalid JSON at offset 1 of the header: string is not valid UTF-8")
    }

    @Test func invalidEntriesAreRejected() {
        let cases: [(String, [UInt8], String)] = [
            (#"{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}"#, [UInt8](repeating: 0, count: 16),
             "tensor 'w' has unknown dtype 'F128'"),
            (#"{"w":{"shape":[1],"data_offsets":[0,4]}}"#, [0, 0, 0, 0], #"tensor 'w' has no "dtype" string"#),
            (#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, [0, 0, 0, 0],
             "tensor 'w' has a shape entry that is not a non-negative integer"),
            (#"{"w":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}"#, [0, 0, 0, 0],
             "tensor 'w' has a shape entry that is not a non-negative integer"),
            (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, [0, 0, 0, 0],
             "tensor 'w' has invalid data_offsets [4, 0]"),
            (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, [0, 0, 0, 0],
             #"tensor 'w' has no "data_offsets" pair of integers"#),
            (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,99999999999999999999]}}"#, [0, 0, 0, 0],
             #"tensor 'w' has no "data_offsets" pair of integers"#),
            (#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, [0, 0, 0, 0],
             "tensor 'w' spans 4 bytes, but shape [2] of F32 needs 8"),
            (#"{"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#, [0, 0, 0, 0],
             "tensor 'w' has shape [4294967296, 4294967296], whose byte count overflows a 64-bit integer"),
            (#"{"w":[]}"#, [], "tensor 'w' is not a JSON object"),
            (#"{"w":{"dtype":"U8","shape":[],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[],"data_offsets":[1,2]}}"#,
             [0, 0], "invalid JSON at offset 52 of the header: duplicate key 'w'"),
        ]
        for (header, data, problem) in cases {
            #expect(parseError(file(header: header, data: data))
                        == "safetensors file /r/checkpoint.safetensors has an invalid header: \(problem)",
                    "header \(header)")
        }
    }

    @Test func badLayoutIsRejected() {
        let overlap = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        #expect(parseError(file(header: overlap, data: [UInt8](repeating: 0, count: 8)))
                == "safetensors file /r/checkpoint.safetensors has an invalid header: tensors 'a' and 'b' overlap "
                + "(bytes 0..<8 and 4..<8 of the data)")

        let gap = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#
        #expect(parseError(file(header: gap, data: [UInt8](repeating: 0, count: 12)))
                == "safetensors file /r/checkpoint.safetensors has an invalid header: bytes 4..<8 of the data belong to no tensor")

        let outOfRange = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#
        #expect(parseError(file(header: outOfRange, data: [UInt8](repeating: 0, count: 4)))
                == "safetensors file /r/checkpoint.safetensors is truncated: its header declares 12 bytes of tensor data "
                + "but the file contains 4 bytes")

        let trailing = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        #expect(parseError(file(header: trailing, data: [UInt8](repeating: 0, count: 6)))
                == "safetensors file /r/checkpoint.safetensors has 2 bytes after the last tensor's data that belong to no tensor")
    }

    @Test func layoutOrderNotHeaderOrderDefinesOrder() throws {
        let header = #"{"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"e":{"dtype":"U8","shape":[0],"data_offsets":[1,1]},"#
            + #""a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#
        let contents = try Safetensors.parse(file(header: header, data: [10, 20]))

        #expect(contents.order == ["a", "e", "b"])
        #expect(contents["a"]?.bytes == [10])
        #expect(contents["b"]?.bytes == [20])
        #expect(contents["e"]?.bytes == [])
    }

    @Test func missingFileThrowsFileIOError() {
        let error = #expect(throws: FileIOError.self) {
            try Safetensors.read(contentsOf: "/nonexistent-npid/checkpoint.safetensors")
        }
        #expect(error?.description == "failed to open /nonexistent-npid/checkpoint.safetensors: "
            + "No such file or directory (check that the folder exists)")
    }
}
