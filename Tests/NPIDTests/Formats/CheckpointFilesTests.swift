#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import NPID
import Torch

/// The kept checkpoints of a run folder: their names, the link that names the latest one,
/// pruning, and the removal of temporary files that a killed save left behind.
@Suite struct CheckpointFilesTests {
    struct NamedPosition: Sendable, CustomTestStringConvertible {
        let position: TrainingPosition
        let name: String

        var testDescription: String { name }
    }

    static let namedPositions = [
        NamedPosition(position: TrainingPosition(epochsDone: 0, stepInEpoch: 0), name: "checkpoint-epoch0.safetensors"),
        NamedPosition(position: TrainingPosition(epochsDone: 3, stepInEpoch: 0), name: "checkpoint-epoch3.safetensors"),
        NamedPosition(position: TrainingPosition(epochsDone: 3, stepInEpoch: 17),
                      name: "checkpoint-epoch4-step17.safetensors"),
        NamedPosition(position: TrainingPosition(epochsDone: 0, stepInEpoch: 1), name: "checkpoint-epoch1-step1.safetensors"),
    ]

    @Test(arguments: namedPositions)
    func fileNameRoundTrips(_ named: NamedPosition) {
        #expect(CheckpointFiles.fileName(for: named.position) == named.name)
        #expect(CheckpointFiles.position(ofFileName: named.name) == named.position)
    }

    @Test(arguments: ["checkpoint.safetensors", "checkpoint-epoch.safetensors", "checkpoint-epoch3-step0.safetensors",
                      "checkpoint-epoch0-step5.safetensors", "checkpoint-epoch+3.safetensors",
                      "checkpoint-epoch3.safetensors.tmp", "checkpoint-best.safetensors",
                      "checkpoint-epoch3-step.safetensors", "checkpoint-epoch3-step2-step4.safetensors",
                      ".checkpoint-epoch3.safetensors.tmp-12-ab"])
    func otherNamesAreNotCheckpoints(_ name: String) {
        #expect(CheckpointFiles.position(ofFileName: name) == nil)
    }

    static func checkpoint(at position: TrainingPosition) throws -> Checkpoint {
        var checkpoint = try CheckpointRoundTripTests.makeCheckpoint(
            model: ResNet(CheckpointRoundTripTests.modelConfiguration), z: 2.5)
        checkpoint.epochsDone = position.epochsDone
        checkpoint.stepInEpoch = position.stepInEpoch
        checkpoint.stepsDone = position.epochsDone * 5 + position.stepInEpoch
        checkpoint.epochImageCount = position.stepInEpoch * 6
        checkpoint.epochLossSum = position.stepInEpoch == 0 ? 0 : 1.5
        return checkpoint
    }

    static func inode(_ path: String) -> UInt64? {
        var status = stat()
        guard stat(path, &status) == 0 else {
            return nil
        }
        return UInt64(status.st_ino)
    }

    @Test func saveKeepsNewestAndLinksLatest() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        FormatsTestFiles.writeBytes(Array("keep me".utf8), to: folder + "/notes.txt")
        let files = CheckpointFiles(runDirectory: folder, keepCount: 2)

        for position in [TrainingPosition(epochsDone: 1, stepInEpoch: 0), TrainingPosition(epochsDone: 1, stepInEpoch: 2),
                         TrainingPosition(epochsDone: 2, stepInEpoch: 0)] {
            let warnings = try files.save(Self.checkpoint(at: position))
            #expect(warnings.isEmpty)
        }

        #expect(FormatsTestFiles.list(folder) == ["checkpoint-epoch2-step2.safetensors", "checkpoint-epoch2.safetensors",
                                                  "checkpoint.safetensors", "notes.txt"])
        #expect(FormatsTestFiles.readBytes(folder + "/notes.txt") == Array("keep me".utf8))
        // The latest name is a second link to the newest file, not a copy.
        let newest = folder + "/checkpoint-epoch2.safetensors"
        #expect(Self.inode(folder + "/checkpoint.safetensors") == Self.inode(newest))
        #expect(try Checkpoint.read(contentsOf: folder + "/checkpoint.safetensors").epochsDone == 2)
        let older = try Checkpoint.read(contentsOf: folder + "/checkpoint-epoch2-step2.safetensors")
        #expect(older.epochsDone == 1)
        #expect(older.stepInEpoch == 2)
        #expect(files.keptCheckpoints().map(\.path) == [folder + "/checkpoint-epoch2-step2.safetensors", newest])
    }

    @Test func keepOneLeavesOnlyLatest() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        let files = CheckpointFiles(runDirectory: folder, keepCount: 1)

        for epoch in 1...3 {
            _ = try files.save(Self.checkpoint(at: TrainingPosition(epochsDone: epoch, stepInEpoch: 0)))
        }

        #expect(FormatsTestFiles.list(folder) == ["checkpoint-epoch3.safetensors", "checkpoint.safetensors"])
        #expect(FormatsTestFiles.readBytes(folder + "/checkpoint.safetensors")
                == FormatsTestFiles.readBytes(folder + "/checkpoint-epoch3.safetensors"))
    }

    @Test func failedSaveKeepsPreviousCheckpoints() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        let files = CheckpointFiles(runDirectory: folder, keepCount: 1)
        _ = try files.save(Self.checkpoint(at: TrainingPosition(epochsDone: 1, stepInEpoch: 0)))
        let before = FormatsTestFiles.readBytes(folder + "/checkpoint.safetensors")

        // A folder in the way of the new file makes its rename fail after the data was written.
        mkdir(folder + "/checkpoint-epoch2.safetensors", 0o755)
        mkdir(folder + "/checkpoint-epoch2.safetensors/inner", 0o755)
        defer {
            rmdir(folder + "/checkpoint-epoch2.safetensors/inner")
            rmdir(folder + "/checkpoint-epoch2.safetensors")
        }
        let error = #expect(throws: FileIOError.self) {
            _ = try files.save(Self.checkpoint(at: TrainingPosition(epochsDone: 2, stepInEpoch: 0)))
        }

        #expect(error?.code == EISDIR)
        #expect(FormatsTestFiles.readBytes(folder + "/checkpoint.safetensors") == before)
        #expect(FormatsTestFiles.list(folder) == ["checkpoint-epoch1.safetensors", "checkpoint-epoch2.safetensors",
                                                  "checkpoint.safetensors"])
        #expect(try Checkpoint.read(contentsOf: folder + "/checkpoint.safetensors").epochsDone == 1)
    }

    @Test func linkOverSameFileLeavesNoTemporary() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        try AtomicFile.write([1, 2, 3], to: folder + "/data.bin")
        try AtomicFile.replace(folder + "/latest.bin", withLinkTo: folder + "/data.bin")

        // Both names already link one file, which rename(2) treats as nothing to do.
        try AtomicFile.replace(folder + "/latest.bin", withLinkTo: folder + "/data.bin")

        #expect(FormatsTestFiles.list(folder) == ["data.bin", "latest.bin"])
        #expect(FormatsTestFiles.readBytes(folder + "/latest.bin") == [1, 2, 3])
    }

    @Test func linkToMissingFileThrows() {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        FormatsTestFiles.writeBytes([7], to: folder + "/latest.bin")

        let error = #expect(throws: FileIOError.self) {
            try AtomicFile.replace(folder + "/latest.bin", withLinkTo: folder + "/missing.bin")
        }

        #expect(error?.code == ENOENT)
        #expect(error?.description.hasPrefix("failed to link \(folder)/missing.bin as \(folder)/.latest.bin.tmp-") == true)
        #expect(FormatsTestFiles.list(folder) == ["latest.bin"])
        #expect(FormatsTestFiles.readBytes(folder + "/latest.bin") == [7])
    }

    @Test func abandonedTemporaryFilesAreRemoved() {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        // No process can have this id: it is above the kernel's pid_max limit of 2^22.
        let deadWriter = ".checkpoint-epoch2.safetensors.tmp-2147483600-1a2b"
        let liveWriter = ".checkpoint-epoch2.safetensors.tmp-\(getppid())-ff"
        let ownWriter = ".metrics.jsonl.tmp-\(getpid())-3c"
        let others = ["checkpoint.safetensors", ".hidden", ".x.tmp-12", ".x.tmp-abc-12", "y.tmp-2147483600-1"]
        for name in [deadWriter, liveWriter, ownWriter] + others {
            FormatsTestFiles.writeBytes([0], to: folder + "/" + name)
        }

        let removed = AtomicFile.removeAbandonedTemporaryFiles(in: folder)

        #expect(removed == [deadWriter])
        #expect(FormatsTestFiles.list(folder) == ([liveWriter, ownWriter] + others).sorted())
    }
}
