#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import NPID

/// A failed write must throw, keep the previous file and leave no temporary file behind.
/// Permission bits cannot force a failure because the tests may run as root. A path through a
/// regular file (ENOTDIR), a missing folder and a throwing writer force one instead.
@Suite struct AtomicWriteTests {
    let tensors = [SafetensorsTensor(name: "w", shape: [2], values: [Float](arrayLiteral: 1, 2))]

    @Test func folderThatIsAFileThrows() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        FormatsTestFiles.writeBytes([1, 2, 3], to: folder + "/plain-file")
        let path = folder + "/plain-file/checkpoint.safetensors"

        let error = #expect(throws: FileIOError.self) {
            try Safetensors.write(tensors, to: path)
        }
        #expect(error?.code == ENOTDIR)
        #expect(error?.description.hasPrefix("failed to create temporary file \(folder)/plain-file/.checkpoint.safetensors.tmp-") == true)
        #expect(error?.description.hasSuffix(": Not a directory (a component of the path is a file, not a folder)") == true)
        #expect(FormatsTestFiles.list(folder) == ["plain-file"])
        #expect(FormatsTestFiles.readBytes(folder + "/plain-file") == [1, 2, 3])
    }

    @Test func missingFolderThrows() {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }

        let error = #expect(throws: FileIOError.self) {
            try Safetensors.write(tensors, to: folder + "/missing/checkpoint.safetensors")
        }
        #expect(error?.code == ENOENT)
        #expect(FormatsTestFiles.list(folder) == [])
    }

    @Test func failedWriteKeepsPreviousFile() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        let path = folder + "/checkpoint.safetensors"
        try Safetensors.write(tensors, metadata: ["epoch": "1"], to: path)
        let previous = FormatsTestFiles.readBytes(path)

        struct InterruptedWrite: Error {}
        #expect(throws: InterruptedWrite.self) {
            try AtomicFile.write(to: path) { writer in
                try writer.write([UInt8](repeating: 0xAB, count: 100_000))
                throw InterruptedWrite()
            }
        }

        #expect(FormatsTestFiles.readBytes(path) == previous)
        #expect(FormatsTestFiles.list(folder) == ["checkpoint.safetensors"])
        #expect(try Safetensors.read(contentsOf: path).metadata == ["epoch": "1"])
    }

    @Test func invalidTensorKeepsPreviousFile() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        let path = folder + "/checkpoint.safetensors"
        try Safetensors.write(tensors, to: path)
        let previous = FormatsTestFiles.readBytes(path)

        #expect(throws: SafetensorsError.self) {
            try Safetensors.write([SafetensorsTensor(name: "w", dtype: .f32, shape: [3], bytes: [0])], to: path)
        }
        #expect(FormatsTestFiles.readBytes(path) == previous)
        #expect(FormatsTestFiles.list(folder) == ["checkpoint.safetensors"])
    }

    @Test func failedRenameRemovesTemporaryFile() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer {
            rmdir(folder + "/target/inner")
            FormatsTestFiles.removeFolder(folder + "/target")
            FormatsTestFiles.removeFolder(folder)
        }
        // rename(2) cannot replace a non-empty folder with a file.
        mkdir(folder + "/target", 0o755)
        mkdir(folder + "/target/inner", 0o755)

        let error = #expect(throws: FileIOError.self) {
            try AtomicFile.write([1, 2, 3], to: folder + "/target")
        }
        #expect(error?.code == EISDIR)
        #expect(FormatsTestFiles.list(folder) == ["target"])
    }

    @Test func overwriteReplacesContents() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        let path = folder + "/file.bin"

        try AtomicFile.write([1, 2, 3], to: path)
        try AtomicFile.write([4, 5], to: path)

        #expect(FormatsTestFiles.readBytes(path) == [4, 5])
        #expect(FormatsTestFiles.list(folder) == ["file.bin"])
    }

    @Test func relativePathWritesIntoCurrentFolder() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        #expect(AtomicFile.parentFolder(of: "name.bin") == ".")
        #expect(AtomicFile.parentFolder(of: "/name.bin") == "/")
        #expect(AtomicFile.parentFolder(of: "a/b/name.bin") == "a/b")

        try AtomicFile.write([9], to: folder + "/./name.bin")
        #expect(FormatsTestFiles.readBytes(folder + "/name.bin") == [9])
    }
}
