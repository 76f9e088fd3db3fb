import Testing
@testable import NPID

@Suite struct SafetensorsRoundTripTests {
    let tensors: [SafetensorsTensor] = [
        SafetensorsTensor(name: "conv1.weight", shape: [2, 3], values: [Float](arrayLiteral: 1, -2.5, 3e-8, .infinity, 0, -0.0)),
        SafetensorsTensor(name: "memory_bank", shape: [2, 2], values: [Double](arrayLiteral: 0.1, -0.2, 1e300, 4)),
        SafetensorsTensor(name: "step", shape: [], values: [Int64(-1234567890123)]),
        SafetensorsTensor(name: "labels", shape: [5], values: [Int32](arrayLiteral: 0, 9, -1, .max, .min)),
        SafetensorsTensor(name: "empty", shape: [3, 0], values: [Float]()),
        SafetensorsTensor(name: "mask", dtype: .bool, shape: [3], bytes: [1, 0, 1]),
        SafetensorsTensor(name: "half", dtype: .f16, shape: [2], bytes: [0x00, 0x3C, 0x00, 0xC0]),
        SafetensorsTensor(name: "pixels", shape: [2, 2, 1], values: [UInt8](arrayLiteral: 0, 127, 128, 255)),
        SafetensorsTensor(name: "naïve \"quoted\"\n", shape: [1], values: [Int16(-7)]),
    ]
    let metadata = ["epoch": "12", "arch": "resnet18", "note": "line\nbreak \"and\" ü"]

    @Test func writeThenReadReturnsSameTensors() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        let path = folder + "/checkpoint.safetensors"

        try Safetensors.write(tensors, metadata: metadata, to: path)
        let contents = try Safetensors.read(contentsOf: path)

        #expect(contents.order == tensors.map(\.name))
        #expect(contents.metadata == metadata)
        for tensor in tensors {
            #expect(contents[tensor.name] == tensor)
        }
        #expect(FormatsTestFiles.list(folder) == ["checkpoint.safetensors"])
    }

    @Test func typedValuesDecode() throws {
        let contents = try Safetensors.parse(Safetensors.serialize(tensors, metadata: metadata))

        #expect(try contents["conv1.weight"]!.values(as: Float.self) == [1, -2.5, 3e-8, .infinity, 0, -0.0])
        #expect(try contents["memory_bank"]!.values(as: Double.self) == [0.1, -0.2, 1e300, 4])
        #expect(try contents["step"]!.values(as: Int64.self) == [-1234567890123])
        #expect(try contents["labels"]!.values(as: Int32.self) == [0, 9, -1, .max, .min])
        #expect(try contents["empty"]!.values(as: Float.self) == [])
        #expect(contents["step"]!.elementCount == 1)
        #expect(contents["empty"]!.elementCount == 0)
    }

    @Test func valuesRejectWrongDType() throws {
        let tensor = SafetensorsTensor(name: "bank", shape: [1], values: [Double(1)])
        let error = #expect(throws: SafetensorsError.self) {
            try tensor.values(as: Float.self)
        }
        #expect(error?.description == "tensor 'bank' has dtype F64, but F32 values were requested")
    }

    @Test func headerReadsWithoutData() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        let path = folder + "/checkpoint.safetensors"
        try Safetensors.write(tensors, metadata: metadata, to: path)

        let header = try Safetensors.readHeader(contentsOf: path)

        #expect(header.metadata == metadata)
        #expect(header.tensors.map(\.name) == tensors.map(\.name))
        #expect(header.tensors[0].dtype == .f32)
        #expect(header.tensors[0].shape == [2, 3])
        #expect(header.tensors[0].dataOffsets == 0..<24)
        #expect(header.tensors[1].dataOffsets == 24..<56)
        #expect(header.headerByteCount % 8 == 0)
        #expect(header.dataByteCount == tensors.reduce(0) { $0 + $1.bytes.count })
    }

    @Test func emptyFileWithoutTensorsRoundTrips() throws {
        let bytes = try Safetensors.serialize([], metadata: [:])
        #expect(bytes == [8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8))

        let contents = try Safetensors.parse(bytes)
        #expect(contents.tensors.isEmpty)
        #expect(contents.order.isEmpty)
        #expect(contents.metadata.isEmpty)
    }

    @Test func writeRejectsInvalidTensors() throws {
        let cases: [(SafetensorsTensor, SafetensorsTensor?, String)] = [
            (SafetensorsTensor(name: "w", dtype: .f32, shape: [2], bytes: [0, 0, 0]), nil,
             "tensor 'w' has 3 bytes, but shape [2] of F32 needs 8"),
            (SafetensorsTensor(name: "w", dtype: .f32, shape: [-1], bytes: []), nil,
             "tensor 'w' has a negative dimension in shape [-1]"),
            (SafetensorsTensor(name: "__metadata__", dtype: .u8, shape: [], bytes: [0]), nil,
             "tensor name '__metadata__' is reserved for the file's metadata, so rename the tensor"),
            (SafetensorsTensor(name: "w", dtype: .u8, shape: [], bytes: [0]),
             SafetensorsTensor(name: "w", dtype: .u8, shape: [], bytes: [1]),
             "tensor name 'w' appears twice, but safetensors names must be unique"),
        ]
        for (first, second, message) in cases {
            let error = #expect(throws: SafetensorsError.self) {
                try Safetensors.serialize([first] + (second.map { [$0] } ?? []))
            }
            #expect(error?.description == message)
        }
    }
}
