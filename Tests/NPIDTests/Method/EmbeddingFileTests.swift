import Foundation
import Testing
@testable import NPID

/// The recursive image scan behind `npid embed` and the embeddings file it writes.
@Suite struct EmbeddingFileTests {
    @Test func scanFindsImagesRecursively() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let root = folder.path
        let manager = FileManager.default
        for path in ["b.png", "a/x.JPG", "a/c/z.jpeg", "a/.hidden.jpg", ".cache/y.jpg", "notes.txt", "a/c/readme.md"] {
            try manager.createDirectory(atPath: (root + "/" + path as NSString).deletingLastPathComponent,
                                        withIntermediateDirectories: true)
            try Data([1, 2, 3]).write(to: URL(fileURLWithPath: root + "/" + path))
        }
        // A link to a file counts; a link back to a folder above is not followed. A broken link
        // named like an image counts too, so that embedding it fails with its name.
        try manager.createSymbolicLink(atPath: root + "/a/linked.png", withDestinationPath: root + "/b.png")
        try manager.createSymbolicLink(atPath: root + "/a/c/loop", withDestinationPath: root)
        try manager.createSymbolicLink(atPath: root + "/a/broken.jpg", withDestinationPath: root + "/absent.jpg")
        try manager.createSymbolicLink(atPath: root + "/a/c/linked-folder.jpg", withDestinationPath: root + "/a")

        let paths = try ImageFileScan.relativePaths(under: root + "/")

        #expect(paths == ["a/broken.jpg", "a/c/z.jpeg", "a/linked.png", "a/x.JPG", "b.png"])
    }

    @Test func scanRejectsMissingOrEmptyFolder() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        try Data([1]).write(to: folder.appendingPathComponent("notes.txt"))

        #expect(throws: DataError.missingFolder(path: folder.path + "/absent")) {
            try ImageFileScan.relativePaths(under: folder.path + "/absent")
        }
        #expect(throws: DataError.noImages(path: folder.path)) {
            try ImageFileScan.relativePaths(under: folder.path)
        }
    }

    @Test func fileRoundTripsWithPathsInMetadata() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let path = folder.appendingPathComponent("embeddings.safetensors").path
        let paths = ["cat/0001.jpg", "dog/ä b.png"]
        let features: [Float] = [0.6, 0.8, 0, 1, 0, 0]
        let file = EmbeddingFile(features: features, dimension: 3, paths: paths, root: "/data/pets",
                                 checkpoint: "runs/a/checkpoint.safetensors", layer: .embedding)

        try file.write(to: path)
        let header = try Safetensors.readHeader(contentsOf: path)
        let restored = try EmbeddingFile.read(contentsOf: path)

        #expect(header.metadata["format"] == "swift-npid-embeddings-1")
        #expect(header.metadata["paths"] == #"["cat/0001.jpg","dog/ä b.png"]"#)
        #expect(header.metadata["root"] == "/data/pets")
        #expect(header.metadata["layer"] == "embedding")
        #expect(header.tensors.map(\.name) == ["features"])
        #expect(header.tensors.first?.shape == [2, 3])
        #expect(restored.paths == paths)
        #expect(restored.features == features)
        #expect(restored.dimension == 3)
        #expect(restored.checkpoint == "runs/a/checkpoint.safetensors")
        #expect(restored.networkFingerprint == nil)
        #expect(header.metadata["network_crc32c"] == nil)
    }

    @Test func fingerprintRoundTrips() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let path = folder.appendingPathComponent("embeddings.safetensors").path

        try EmbeddingFile(features: [1, 0], dimension: 2, paths: ["a.jpg"], root: "/data", checkpoint: "c",
                          layer: .pooled, networkFingerprint: "0a1b2c3d").write(to: path)
        let restored = try EmbeddingFile.read(contentsOf: path)

        #expect(restored.networkFingerprint == "0a1b2c3d")
        #expect(restored.layer == .pooled)
    }

    /// Files that parse as safetensors but describe no usable index: each gets its own sentence.
    @Test(arguments: [
        (["a.jpg", "b.jpg"], [Float](repeating: 1, count: 6), "embedding", "has 2 paths in its metadata for 3 feature rows"),
        ([String](), [Float](), "embedding", "contains no images"),
        (["a.jpg"], [Float(1), 0], "bogus", "names an unknown layer 'bogus' in its metadata"),
        (["a.jpg"], [Float.nan, 0], "embedding", "contains features that are NaN or infinite"),
    ])
    func readRejectsUnusableIndex(paths: [String], features: [Float], layer: String, problem: String) throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let path = folder.appendingPathComponent("index.safetensors").path
        let rows = features.count / 2
        let pathList = "[" + paths.map { "\"\($0)\"" }.joined(separator: ",") + "]"
        try Safetensors.write([SafetensorsTensor(name: "features", shape: [rows, 2], values: features)],
                              metadata: ["format": EmbeddingFile.format, "paths": pathList, "root": "/data",
                                         "checkpoint": "c", "layer": layer],
                              to: path)

        #expect(throws: SafetensorsError.self) { try EmbeddingFile.read(contentsOf: path) }
        do {
            _ = try EmbeddingFile.read(contentsOf: path)
        } catch {
            #expect("\(error)" == "\(path) \(problem); write it again with npid embed")
        }
    }

    @Test func readRejectsOtherSafetensors() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let path = folder.appendingPathComponent("other.safetensors").path
        try Safetensors.write([SafetensorsTensor(name: "features", shape: [1, 1], values: [Float(1)])], to: path)

        #expect(throws: SafetensorsError.self) { try EmbeddingFile.read(contentsOf: path) }
        do {
            _ = try EmbeddingFile.read(contentsOf: path)
        } catch {
            #expect("\(error)" == "\(path) is not an npid embeddings file (metadata format is missing, expected swift-npid-embeddings-1); write it again with npid embed")
        }
    }
}
