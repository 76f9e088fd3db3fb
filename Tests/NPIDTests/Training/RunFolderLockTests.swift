import Foundation
import Testing
@testable import NPID

/// The run folder's lock: one holder at a time, released with its owner, no file left.
@Suite struct RunFolderLockTests {
    static func scratchFolder() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("npid-lock-\(UUID().uuidString)").path
    }

    @Test func secondLockIsRejected() throws {
        let folder = Self.scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let first = try RunFolderLock(runDirectory: folder + "/run")

        // flock conflicts between two open descriptors even inside one process, as between two npid processes.
        #expect(throws: RunFolderBusy.self) {
            try RunFolderLock(runDirectory: folder + "/run")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder + "/run").isEmpty)
        withExtendedLifetime(first) {}
    }

    @Test func releasedLockCanBeTakenAgain() throws {
        let folder = Self.scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var first: RunFolderLock? = try RunFolderLock(runDirectory: folder)
        #expect(first != nil)
        first = nil

        let second = try RunFolderLock(runDirectory: folder)
        withExtendedLifetime(second) {}
    }

    @Test func busyMessageNamesFolder() {
        let busy = RunFolderBusy(runDirectory: "runs/c10")

        #expect(busy.description == "another npid train is writing to --run-dir runs/c10; wait for it to end, stop it, or choose another --run-dir")
    }
}
