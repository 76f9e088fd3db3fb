#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// File helpers for the format tests, built on POSIX calls so the tests do not go through the
/// code under test.
enum FormatsTestFiles {
    /// Creates a fresh, empty folder under /tmp for one test and returns its path.
    static func makeFolder() -> String {
        var template = Array("/tmp/npid-formats-test-XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { buffer in
            mkdtemp(buffer.baseAddress!)
        }
        precondition(created != nil, "mkdtemp failed: \(String(cString: strerror(errno)))")
        return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Removes a folder created by `makeFolder` and the files in it.
    static func removeFolder(_ path: String) {
        for name in list(path) {
            unlink(path + "/" + name)
        }
        rmdir(path)
    }

    /// Returns the sorted names in a folder, without "." and "..".
    static func list(_ path: String) -> [String] {
        guard let folder = opendir(path) else {
            return []
        }
        defer { closedir(folder) }
        var names: [String] = []
        while let entry = readdir(folder) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." {
                names.append(name)
            }
        }
        return names.sorted()
    }

    /// Returns the bytes of a file, or nil if it cannot be opened.
    static func readBytes(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else {
            return nil
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count == 0 {
                break
            }
            bytes += chunk[0..<count]
        }
        return bytes
    }

    /// Writes bytes to a file directly, without the atomic path, to set up test inputs.
    static func writeBytes(_ bytes: [UInt8], to path: String) {
        let file = fopen(path, "wb")
        precondition(file != nil, "cannot create \(path)")
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        fclose(file)
    }
}
