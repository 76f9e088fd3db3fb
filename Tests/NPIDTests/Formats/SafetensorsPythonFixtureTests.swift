import Testing
@testable import NPID

/// Reads Fixtures/python_written.safetensors, written by Hugging Face's Python safetensors 0.8.0
/// through scripts/make_safetensors_fixture.py, so the reader is checked against another
/// implementation of the format. The expected values here must match the script's formulas.
@Suite struct SafetensorsPythonFixtureTests {
    static let fixturePath: String = {
        let testFile = "\(#filePath)"
        let folder = testFile[..<testFile.lastIndex(of: "/")!]
        return folder + "/Fixtures/python_written.safetensors"
    }()

    /// The fixture tensors as the Python script builds them.
    static func expectedTensors() -> [SafetensorsTensor] {
        [
            SafetensorsTensor(name: "embedding", shape: [4, 8], values: (0..<32).map { Float($0) * 0.25 - 3 }),
            SafetensorsTensor(name: "memory_bank", shape: [3, 2], values: [0.1, -0.2, 3.5, 1e300, -1e-300, 0.0]),
            SafetensorsTensor(name: "labels", shape: [5], values: [Int64](arrayLiteral: 0, 1, -1, 1 << 40, -(1 << 62))),
            SafetensorsTensor(name: "index", shape: [], values: [Int32(42)]),
            // 1.0, -2.0 and 0.5 in IEEE half precision are 0x3C00, 0xC000 and 0x3800.
            SafetensorsTensor(name: "half", dtype: .f16, shape: [3], bytes: [0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38]),
            SafetensorsTensor(name: "empty", shape: [0, 4], values: [Float]()),
            SafetensorsTensor(name: "mask", dtype: .bool, shape: [4], bytes: [1, 0, 0, 1]),
            SafetensorsTensor(name: "pixels", shape: [2, 3], values: [UInt8](arrayLiteral: 0, 50, 100, 150, 200, 250)),
            SafetensorsTensor(name: "small", shape: [3], values: [Int8](arrayLiteral: -128, 0, 127)),
            SafetensorsTensor(name: "short", shape: [2], values: [Int16](arrayLiteral: -300, 300)),
        ]
    }

    static let expectedMetadata = ["format": "np", "writer": "make_safetensors_fixture.py"]

    @Test func pythonFileReadsExactValues() throws {
        let contents = try Safetensors.read(contentsOf: Self.fixturePath)

        #expect(contents.metadata == Self.expectedMetadata)
        #expect(Set(contents.order) == Set(Self.expectedTensors().map(\.name)))
        #expect(contents.order.count == 10)
        for tensor in Self.expectedTensors() {
            #expect(contents[tensor.name] == tensor, "tensor \(tensor.name)")
        }
        #expect(try contents["memory_bank"]!.values(as: Double.self) == [0.1, -0.2, 3.5, 1e300, -1e-300, 0.0])
        #expect(try contents["index"]!.values(as: Int32.self) == [42])
    }

    @Test func pythonFileHeaderIsContiguous() throws {
        let header = try Safetensors.readHeader(contentsOf: Self.fixturePath)

        #expect(header.headerByteCount % 8 == 0)
        var end = 0
        for info in header.tensors {
            #expect(info.dataOffsets.lowerBound == end, "tensor \(info.name)")
            end = info.dataOffsets.upperBound
        }
        #expect(end == header.dataByteCount)
    }

    @Test func pythonFileRewritesIdentically() throws {
        // Writing the tensors back in the file's order must reproduce Python's bytes exactly,
        // header layout and padding included.
        let original = try #require(FormatsTestFiles.readBytes(Self.fixturePath))
        let contents = try Safetensors.parse(original)

        let rewritten = try Safetensors.serialize(contents.order.map { contents[$0]! }, metadata: contents.metadata)

        #expect(rewritten == original)
    }
}
