import Foundation
@testable import NPID

/// Small folders and archives in the layout of the official CIFAR binary archives, with known pixels.
enum CIFARFixtures {
    /// Returns the value of plane `plane` (0 red, 1 green, 2 blue) at position `position` (y * 32 + x)
    /// of record `record` in batch file number `file`.
    static func sample(file: Int, record: Int, plane: Int, position: Int) -> UInt8 {
        UInt8((position * 3 + plane * 50 + record * 7 + file * 31) % 256)
    }

    /// Returns one record: the label bytes, then the red, green and blue planes.
    static func record(labels: [UInt8], file: Int, record: Int) -> [UInt8] {
        var bytes = labels
        for plane in 0..<3 {
            for position in 0..<1024 {
                bytes.append(sample(file: file, record: record, plane: plane, position: position))
            }
        }
        return bytes
    }

    static let cifar10Names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    /// Labels of the CIFAR-10 fixture: two records in each of the five training batches, three test records.
    static let cifar10TrainLabels: [[UInt8]] = [[3, 0], [3, 9], [1, 3], [0, 0], [9, 2]]
    static let cifar10TestLabels: [UInt8] = [5, 3, 5]

    /// Writes `root/cifar-10-batches-bin/` with the fixture's batch files and class names.
    @discardableResult
    static func writeCIFAR10(under root: String) throws -> String {
        let folder = root + "/cifar-10-batches-bin"
        for (number, labels) in cifar10TrainLabels.enumerated() {
            let bytes = labels.enumerated().flatMap { record(labels: [$1], file: number + 1, record: $0) }
            try TestImages.write(bytes, to: folder + "/data_batch_\(number + 1).bin")
        }
        let testBytes = cifar10TestLabels.enumerated().flatMap { record(labels: [$1], file: 0, record: $0) }
        try TestImages.write(testBytes, to: folder + "/test_batch.bin")
        // The official file ends with blank lines; the reader must ignore them.
        try TestImages.write(Array((cifar10Names.joined(separator: "\n") + "\n\n").utf8), to: folder + "/batches.meta.txt")
        return folder
    }

    /// Returns the MD5 of `bytes` as hexadecimal digits, for tests that cannot see the NPID module.
    static func md5(_ bytes: [UInt8]) -> String {
        MD5.hexDigest(of: bytes)
    }

    /// Builds a .tar.gz of a CIFAR-10 fixture folder with /bin/tar, laid out like the official archive,
    /// and returns its bytes. `leaveOut` names files to omit from the archive.
    static func cifar10Archive(in workFolder: String, leaveOut: [String] = []) throws -> [UInt8] {
        let source = workFolder + "/archive-source-\(UUID().uuidString)"
        let folder = try writeCIFAR10(under: source)
        for name in leaveOut {
            try FileManager.default.removeItem(atPath: folder + "/" + name)
        }
        let archivePath = workFolder + "/cifar-10-binary-\(UUID().uuidString).tar.gz"
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/bin/tar")
        tar.arguments = ["-czf", archivePath, "-C", source, "cifar-10-batches-bin"]
        try tar.run()
        tar.waitUntilExit()
        guard tar.terminationStatus == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "tar exited with \(tar.terminationStatus)"])
        }
        defer {
            try? FileManager.default.removeItem(atPath: source)
            try? FileManager.default.removeItem(atPath: archivePath)
        }
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: archivePath)))
    }
}
