import Foundation
import Testing
@testable import NPID

@Suite struct MD5Tests {
    /// The test suite of RFC 1321, appendix A.5.
    static let rfcVectors: [(message: String, digest: String)] = [
        ("", "d41d8cd98f00b204e9800998ecf8427e"),
        ("a", "0cc175b9c0f1b6a831c399e269772661"),
        ("abc", "900150983cd24fb0d6963f7d28e17f72"),
        ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
        ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
        ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
        ("12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"),
    ]

    @Test func rfc1321VectorsMatch() {
        for vector in Self.rfcVectors {
            #expect(MD5.hexDigest(of: Array(vector.message.utf8)) == vector.digest, "message '\(vector.message)'")
        }
    }

    @Test func piecewiseInputMatchesWhole() {
        // Lengths around the 56- and 64-byte padding boundaries, split at every position.
        var random = SampleRandom(seed: 11)
        for length in [55, 56, 57, 63, 64, 65, 119, 120, 128, 129] {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let whole = MD5.hexDigest(of: bytes)
            for split in 0...length {
                var md5 = MD5()
                md5.update(Array(bytes[..<split]))
                md5.update(Array(bytes[split...]))
                #expect(md5.hexDigest() == whole, "length \(length) split at \(split)")
            }
        }
    }

    @Test func finalizeLeavesStateForMoreInput() {
        var md5 = MD5()
        md5.update(Array("message ".utf8))
        #expect(md5.hexDigest() == MD5.hexDigest(of: Array("message ".utf8)))
        md5.update(Array("digest".utf8))
        #expect(md5.hexDigest() == "f96b697d7cb7938d525a2f31aaf161d0")
    }

    @Test func fileDigestMatchesPythonHashlib() throws {
        // 2 MiB + 17 bytes, so the file is read in two 1 MiB pieces and a partial one.
        // Expected value: hashlib.md5(bytes(i * 7 % 251 for i in range(2 * 1048576 + 17))).hexdigest().
        let folder = try TestImages.makeTemporaryFolder()
        defer { TestImages.removeFolder(folder) }
        let count = 2 * 1_048_576 + 17
        let bytes = (0..<count).map { (index: Int) -> UInt8 in UInt8(index * 7 % 251) }
        try TestImages.write(bytes, to: folder + "/data.bin")

        #expect(try MD5.hexDigest(ofFileAt: folder + "/data.bin") == "06ea1852b27f3d764bb3967f8867d569")
    }

    @Test func missingFileThrowsUnreadable() {
        #expect(throws: DataError.unreadableFile(path: "/nonexistent-npid/archive.tar.gz",
                                                 reason: "No such file or directory")) {
            try MD5.hexDigest(ofFileAt: "/nonexistent-npid/archive.tar.gz")
        }
    }
}
