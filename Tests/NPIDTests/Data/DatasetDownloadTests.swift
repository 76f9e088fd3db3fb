import Foundation
import Testing
@testable import NPID

/// Downloads from a loopback HTTP server that serves a small CIFAR-10 archive built by the test.
@Suite struct DatasetDownloadTests {
    /// Returns false, printing why, when curl or tar is missing, so the caller can return early.
    static func programsAvailable(_ test: String) -> Bool {
        for program in ["curl", "tar"] where (try? DatasetDownloader.findProgram(program, purpose: "test")) == nil {
            print("skipping \(test): \(program) is not on PATH, and downloads run it")
            return false
        }
        return true
    }

    /// Returns the names in `folder`, sorted, hidden partial files included.
    static func listing(_ folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
    }

    static func archive(url: String, md5: String) -> DatasetArchive {
        DatasetArchive(url: url, md5: md5, fileName: "cifar-10-binary.tar.gz", folderName: "cifar-10-batches-bin",
                       requiredFiles: CIFARDataset.cifar10.requiredFiles)
    }

    @Test func downloadVerifiesAndExtracts() throws {
        guard Self.programsAvailable("downloadVerifiesAndExtracts") else { return }
        let work = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(work) }
        let bytes = try CIFARFixtures.cifar10Archive(in: work)
        let server = try LoopbackHTTPServer(routes: ["/cifar.tar.gz": .body(bytes)])
        defer { server.stop() }
        let cache = work + "/cache"
        let archive = Self.archive(url: server.url("/cifar.tar.gz"), md5: MD5.hexDigest(of: bytes))

        var events: [DownloadEvent] = []
        let folder = try DatasetDownloader.fetch(archive, into: cache) { events.append($0) }

        #expect(folder == cache + "/cifar-10-batches-bin")
        #expect(Self.listing(cache) == ["cifar-10-batches-bin", "cifar-10-binary.tar.gz"])
        #expect(try MD5.hexDigest(ofFileAt: cache + "/cifar-10-binary.tar.gz") == archive.md5)
        let train = try CIFARDataset.cifar10.load(split: .train, from: cache)
        #expect(train.labels == CIFARFixtures.cifar10TrainLabels.flatMap { $0.map(Int.init) })
        #expect(try train[9].pixels[5] == CIFARFixtures.sample(file: 5, record: 1, plane: 2, position: 1))

        guard case .started(let url, let partialPath)? = events.first else {
            Issue.record("first event should be .started, got \(events)")
            return
        }
        #expect(url == archive.url)
        #expect(partialPath.hasPrefix(cache + "/.partial-cifar-10-binary.tar.gz-"))
        #expect(events.contains(.progress(receivedBytes: Int64(bytes.count), totalBytes: Int64(bytes.count))))
        #expect(events.last == .extracting(archivePath: cache + "/cifar-10-binary.tar.gz"))
        #expect(server.requestedPaths == ["/cifar.tar.gz"])

        // A second fetch finds the folder and sends no request.
        #expect(try DatasetDownloader.fetch(archive, into: cache) == folder)
        #expect(server.requestedPaths == ["/cifar.tar.gz"])
    }

    @Test func checksumMismatchCachesNothing() throws {
        guard Self.programsAvailable("checksumMismatchCachesNothing") else { return }
        let work = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(work) }
        var bytes = try CIFARFixtures.cifar10Archive(in: work)
        let published = MD5.hexDigest(of: bytes)
        // One corrupted byte on the way: the server sends a file that differs from the published one.
        bytes[bytes.count / 2] ^= 0x40
        let server = try LoopbackHTTPServer(routes: ["/cifar.tar.gz": .body(bytes)])
        defer { server.stop() }
        let cache = work + "/cache"
        let archive = Self.archive(url: server.url("/cifar.tar.gz"), md5: published)

        let expected = DownloadError.checksumMismatch(url: archive.url, expected: published, actual: MD5.hexDigest(of: bytes))
        #expect(throws: expected) {
            try DatasetDownloader.fetch(archive, into: cache)
        }
        #expect(Self.listing(cache) == [])
        #expect(expected.description == "download of \(archive.url) has MD5 \(MD5.hexDigest(of: bytes)), not the published \(published); the file was deleted, so run again, and if it persists download the archive by hand")
    }

    @Test func connectionCutCachesNothing() throws {
        guard Self.programsAvailable("connectionCutCachesNothing") else { return }
        let work = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(work) }
        let bytes = try CIFARFixtures.cifar10Archive(in: work)
        let server = try LoopbackHTTPServer(routes: ["/cifar.tar.gz": .cut(bytes, sentCount: bytes.count / 2)])
        defer { server.stop() }
        let cache = work + "/cache"
        let archive = Self.archive(url: server.url("/cifar.tar.gz"), md5: MD5.hexDigest(of: bytes))

        let error = #expect(throws: DownloadError.self) {
            try DatasetDownloader.fetch(archive, into: cache)
        }
        guard case .transferFailed(let url, let message)? = error else {
            Issue.record("expected transferFailed, got \(String(describing: error))")
            return
        }
        #expect(url == archive.url)
        // curl's exit code 18 is "partial file": fewer bytes arrived than Content-Length announced.
        #expect(message.hasPrefix("curl: (18) "), "message: \(message)")
        #expect(Self.listing(cache) == [])
        #expect(error!.description == "download of \(archive.url) failed (\(message)); nothing was cached, so check the network connection and run again")
    }

    @Test func missingArchiveReportsStatus() throws {
        guard Self.programsAvailable("missingArchiveReportsStatus") else { return }
        let work = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(work) }
        let server = try LoopbackHTTPServer(routes: [:])
        defer { server.stop() }
        let cache = work + "/cache"
        let archive = Self.archive(url: server.url("/gone.tar.gz"), md5: String(repeating: "0", count: 32))

        let error = #expect(throws: DownloadError.self) {
            try DatasetDownloader.fetch(archive, into: cache)
        }
        guard case .transferFailed(_, let message)? = error else {
            Issue.record("expected transferFailed, got \(String(describing: error))")
            return
        }
        #expect(message.hasPrefix("curl: (22) "), "message: \(message)")
        #expect(message.contains("404"), "message: \(message)")
        #expect(Self.listing(cache) == [])
    }

    @Test func incompleteArchiveIsRemoved() throws {
        guard Self.programsAvailable("incompleteArchiveIsRemoved") else { return }
        let work = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(work) }
        let bytes = try CIFARFixtures.cifar10Archive(in: work, leaveOut: ["test_batch.bin"])
        let server = try LoopbackHTTPServer(routes: ["/cifar.tar.gz": .body(bytes)])
        defer { server.stop() }
        let cache = work + "/cache"
        let archive = Self.archive(url: server.url("/cifar.tar.gz"), md5: MD5.hexDigest(of: bytes))

        #expect(throws: DownloadError.incompleteFolder(path: cache + "/cifar-10-binary.tar.gz (extracted)",
                                                       missing: ["test_batch.bin"])) {
            try DatasetDownloader.fetch(archive, into: cache)
        }
        #expect(Self.listing(cache) == [])
    }

    @Test func cachedArchiveIsExtractedAgain() throws {
        guard Self.programsAvailable("cachedArchiveIsExtractedAgain") else { return }
        let work = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(work) }
        let bytes = try CIFARFixtures.cifar10Archive(in: work)
        let server = try LoopbackHTTPServer(routes: ["/cifar.tar.gz": .body(bytes)])
        defer { server.stop() }
        let cache = work + "/cache"
        let archive = Self.archive(url: server.url("/cifar.tar.gz"), md5: MD5.hexDigest(of: bytes))
        let folder = try DatasetDownloader.fetch(archive, into: cache)
        try FileManager.default.removeItem(atPath: folder)

        var events: [DownloadEvent] = []
        #expect(try DatasetDownloader.fetch(archive, into: cache) { events.append($0) } == folder)

        // The verified archive in the cache is extracted without a second request.
        #expect(server.requestedPaths == ["/cifar.tar.gz"])
        #expect(events == [.extracting(archivePath: cache + "/cifar-10-binary.tar.gz")])
        #expect(CIFARDataset.cifar10.locate(in: cache) == folder)
    }

    @Test func incompleteExistingFolderIsReported() throws {
        let work = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(work) }
        let folder = try CIFARFixtures.writeCIFAR10(under: work)
        try FileManager.default.removeItem(atPath: folder + "/batches.meta.txt")
        let archive = Self.archive(url: "http://127.0.0.1:9/unused.tar.gz", md5: String(repeating: "0", count: 32))

        let expected = DownloadError.incompleteFolder(path: folder, missing: ["batches.meta.txt"])
        #expect(throws: expected) {
            try DatasetDownloader.fetch(archive, into: work)
        }
        #expect(expected.description == "folder \(folder) lacks batches.meta.txt; delete the folder and run again with --download")
    }

    @Test func stalePartialFilesAreRemoved() throws {
        let work = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(work) }
        try TestImages.write([1, 2, 3], to: work + "/.partial-old")
        try TestImages.write([1, 2, 3], to: work + "/.partial-recent")
        try TestImages.write([1, 2, 3], to: work + "/keep.txt")
        let old = Date().addingTimeInterval(-3600)
        try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: work + "/.partial-old")

        DatasetDownloader.removeStalePartials(in: work)

        #expect(Self.listing(work) == [".partial-recent", "keep.txt"])
    }

    @Test func contentLengthOfLastResponse() throws {
        let work = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(work) }
        let headers = "HTTP/1.1 301 Moved Permanently\r\nContent-Length: 162\r\nLocation: https://example.org/a\r\n\r\n"
            + "HTTP/2 200\r\ncontent-length: 170052171\r\n\r\n"
        try TestImages.write(Array(headers.utf8), to: work + "/headers")
        try TestImages.write(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".utf8), to: work + "/chunked")

        #expect(DatasetDownloader.contentLength(work + "/headers") == 170_052_171)
        #expect(DatasetDownloader.contentLength(work + "/chunked") == nil)
        #expect(DatasetDownloader.contentLength(work + "/missing") == nil)
    }

    @Test func cacheFolderFollowsXDG() {
        #expect(DatasetDownloader.defaultCacheFolder(environment: ["XDG_CACHE_HOME": "/c", "HOME": "/h"]) == "/c/swift-npid")
        #expect(DatasetDownloader.defaultCacheFolder(environment: ["XDG_CACHE_HOME": "", "HOME": "/h"]) == "/h/.cache/swift-npid")
        #expect(DatasetDownloader.defaultCacheFolder(environment: ["HOME": "/h"]) == "/h/.cache/swift-npid")
    }

    @Test func progressLineFitsWidth() {
        let line = DownloadProgressLine.render(name: "cifar-10-binary.tar.gz", receivedBytes: 42_500_000,
                                               totalBytes: 170_000_000, elapsed: 5, width: 100)
        #expect(line == "cifar-10-binary.tar.gz [#######.......................]  25% 42.5/170.0 MB 8.5 MB/s ETA 15s")

        let narrow = DownloadProgressLine.render(name: "cifar-10-binary.tar.gz", receivedBytes: 42_500_000,
                                                 totalBytes: 170_000_000, elapsed: 5, width: 60)
        #expect(narrow == "cifar-10-binary.tar.gz  25% 42.5/170.0 MB 8.5 MB/s ETA 15s")

        let unknownTotal = DownloadProgressLine.render(name: "a.tar.gz", receivedBytes: 3_000_000, totalBytes: nil,
                                                       elapsed: 2, width: 100)
        #expect(unknownTotal == "a.tar.gz 3.0 MB 1.5 MB/s")
    }
}
