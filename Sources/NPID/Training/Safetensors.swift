#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length N, N bytes of UTF-8 JSON mapping each tensor name to its dtype, shape and
// byte range, then the raw little-endian tensor data. The byte ranges are relative to the
// first byte after the header and must cover the data exactly, without gaps or overlaps.

/// Element type of a safetensors tensor, spelled as in the header's "dtype" field.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case f64 = "F64"
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case f8E4M3 = "F8_E4M3"
    case f8E5M2 = "F8_E5M2"
    case i64 = "I64"
    case i32 = "I32"
    case i16 = "I16"
    case i8 = "I8"
    case u64 = "U64"
    case u32 = "U32"
    case u16 = "U16"
    case u8 = "U8"
    case bool = "BOOL"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .f8E4M3, .f8E5M2, .i8, .u8, .bool: return 1
        }
    }
}

/// A Swift type whose in-memory bytes, in little-endian order, are one element of a dtype.
public protocol SafetensorsElement: BitwiseCopyable, Sendable {
    static var safetensorsDType: SafetensorsDType { get }
}

extension Double: SafetensorsElement { public static var safetensorsDType: SafetensorsDType { .f64 } }
extension Float: SafetensorsElement { public static var safetensorsDType: SafetensorsDType { .f32 } }
extension Int64: SafetensorsElement { public static var safetensorsDType: SafetensorsDType { .i64 } }
extension Int32: SafetensorsElement { public static var safetensorsDType: SafetensorsDType { .i32 } }
extension Int16: SafetensorsElement { public static var safetensorsDType: SafetensorsDType { .i16 } }
extension Int8: SafetensorsElement { public static var safetensorsDType: SafetensorsDType { .i8 } }
extension UInt64: SafetensorsElement { public static var safetensorsDType: SafetensorsDType { .u64 } }
extension UInt32: SafetensorsElement { public static var safetensorsDType: SafetensorsDType { .u32 } }
extension UInt16: SafetensorsElement { public static var safetensorsDType: SafetensorsDType { .u16 } }
extension UInt8: SafetensorsElement { public static var safetensorsDType: SafetensorsDType { .u8 } }

/// One named tensor: its dtype, shape and raw little-endian bytes in row-major order.
///
/// `bytes.count` must equal the product of `shape` times `dtype.byteSize`. A 0-d tensor has
/// shape `[]` and one element, and a shape containing 0 has no bytes.
public struct SafetensorsTensor: Sendable, Equatable {
    public var name: String
    public var dtype: SafetensorsDType
    public var shape: [Int]
    public var bytes: [UInt8]

    public init(name: String, dtype: SafetensorsDType, shape: [Int], bytes: [UInt8]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    /// Creates a tensor from typed values in row-major order. `values.count` must equal the
    /// product of `shape`.
    public init<Element: SafetensorsElement>(name: String, shape: [Int], values: [Element]) {
        precondition(shape.allSatisfy { $0 >= 0 } && shape.reduce(1, *) == values.count,
                     "tensor '\(name)' of shape \(shape) needs \(shape.reduce(1, *)) values, got \(values.count)")
        let dtype = Element.safetensorsDType
        var bytes = values.withUnsafeBytes { [UInt8]($0) }
        swapToLittleEndian(&bytes, elementSize: dtype.byteSize)
        self.init(name: name, dtype: dtype, shape: shape, bytes: bytes)
    }

    /// Number of elements: the product of `shape`, which is 1 for a 0-d tensor.
    public var elementCount: Int {
        shape.reduce(1, *)
    }

    /// Decodes the bytes as `Element` values. Throws if the dtype is not `Element`'s dtype or
    /// the byte count does not fit the shape.
    public func values<Element: SafetensorsElement>(as type: Element.Type = Element.self) throws -> [Element] {
        let expected = Element.safetensorsDType
        guard dtype == expected else {
            throw SafetensorsError(path: nil, description:
                "tensor '\(name)' has dtype \(dtype.rawValue), but \(expected.rawValue) values were requested")
        }
        guard let byteCount = SafetensorsLayout.byteCount(shape: shape, dtype: dtype), byteCount == bytes.count else {
            throw SafetensorsError(path: nil, description:
                "tensor '\(name)' has \(bytes.count) bytes, which does not match its shape \(shape) and dtype \(dtype.rawValue)")
        }

        var littleEndian = bytes
        swapToLittleEndian(&littleEndian, elementSize: dtype.byteSize)
        let count = bytes.count / MemoryLayout<Element>.stride
        return [Element](unsafeUninitializedCapacity: count) { buffer, initializedCount in
            littleEndian.withUnsafeBytes { source in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source)
            }
            initializedCount = count
        }
    }
}

/// Converts between host and little-endian element order in place. Swapping is its own
/// inverse, so the same call serves both directions. On little-endian hosts it does nothing.
private func swapToLittleEndian(_ bytes: inout [UInt8], elementSize: Int) {
    #if _endian(big)
    guard elementSize > 1 else {
        return
    }
    var start = 0
    while start + elementSize <= bytes.count {
        bytes[start..<start + elementSize].reverse()
        start += elementSize
    }
    #endif
}

/// A tensor's entry in the header, without its data.
public struct SafetensorsTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafetensorsDType
    public let shape: [Int]
    /// Byte range of the tensor's data, relative to the first byte after the header.
    public let dataOffsets: Range<Int>
}

/// The parsed and validated header of a safetensors file.
public struct SafetensorsHeader: Sendable, Equatable {
    /// The free-form string pairs stored under "__metadata__".
    public let metadata: [String: String]
    /// The tensor entries, in the order of their data in the file.
    public let tensors: [SafetensorsTensorInfo]
    /// Length of the JSON header in bytes, including its padding.
    public let headerByteCount: Int
    /// Length of the tensor data that follows the header, in bytes.
    public let dataByteCount: Int
}

/// All tensors and metadata of a safetensors file.
public struct SafetensorsContents: Sendable, Equatable {
    public var tensors: [String: SafetensorsTensor]
    /// Tensor names in the order of their data in the file, which for files written by
    /// `Safetensors.write` is the order of the array passed to it.
    public var order: [String]
    public var metadata: [String: String]

    public subscript(name: String) -> SafetensorsTensor? {
        tensors[name]
    }
}

/// A safetensors file or tensor that cannot be read or written, with a one-sentence description
/// that names the file (when there is one) and the problem.
public struct SafetensorsError: Error, CustomStringConvertible, Sendable {
    public let path: String?
    public let description: String
}

/// Reading and writing of safetensors files.
public enum Safetensors {
    /// The largest header accepted when reading, the same limit as MAX_HEADER_SIZE in the
    /// reference implementation (huggingface/safetensors, safetensors/src/tensor.rs).
    public static let maximumHeaderByteCount = 100_000_000

    /// Serializes the tensors, in the given order, and the metadata to safetensors bytes.
    /// Throws `SafetensorsError` for a duplicate or reserved name, a negative dimension or a
    /// byte count that does not match the shape.
    public static func serialize(_ tensors: [SafetensorsTensor], metadata: [String: String] = [:]) throws -> [UInt8] {
        let header = try encodeHeader(tensors, metadata: metadata)
        var output = headerLengthPrefix(header.count)
        output.reserveCapacity(8 + header.count + tensors.reduce(0) { $0 + $1.bytes.count })
        output += header
        for tensor in tensors {
            output += tensor.bytes
        }
        return output
    }

    /// Writes the tensors, in the given order, and the metadata to `path` atomically: the
    /// previous file stays intact unless the complete new file is on disk. Throws
    /// `SafetensorsError` for invalid tensors (see `serialize`) and `FileIOError` when the file
    /// cannot be written.
    public static func write(_ tensors: [SafetensorsTensor], metadata: [String: String] = [:], to path: String) throws {
        let header = try encodeHeader(tensors, metadata: metadata)
        try AtomicFile.write(to: path) { writer in
            try writer.write(headerLengthPrefix(header.count))
            try writer.write(header)
            for tensor in tensors {
                try writer.write(tensor.bytes)
            }
        }
    }

    /// Reads and validates a whole safetensors file. Throws `SafetensorsError` for a truncated,
    /// corrupt or foreign file, and `FileIOError` when the file cannot be opened or read.
    /// The header is validated against the file size before tensor memory is allocated, so a
    /// damaged file cannot cause a large allocation.
    public static func read(contentsOf path: String) throws -> SafetensorsContents {
        let file = try ReadOnlyFile(path: path)
        defer { file.release() }
        let source = SafetensorsSource(description: path, byteCount: file.byteCount) { offset, count in
            try file.read(at: offset, count: count)
        }
        return try readContents(from: source)
    }

    /// Reads and validates only the header of a safetensors file, without its tensor data.
    public static func readHeader(contentsOf path: String) throws -> SafetensorsHeader {
        let file = try ReadOnlyFile(path: path)
        defer { file.release() }
        let source = SafetensorsSource(description: path, byteCount: file.byteCount) { offset, count in
            try file.read(at: offset, count: count)
        }
        return try readHeader(from: source)
    }

    /// Parses and validates safetensors bytes held in memory. Error messages show `name` in
    /// place of a path.
    public static func parse(_ bytes: [UInt8], name: String = "(in memory)") throws -> SafetensorsContents {
        let source = SafetensorsSource(description: name, byteCount: bytes.count) { offset, count in
            Array(bytes[offset..<offset + count])
        }
        return try readContents(from: source)
    }

    // MARK: Writing

    private static func headerLengthPrefix(_ length: Int) -> [UInt8] {
        withUnsafeBytes(of: UInt64(length).littleEndian) { [UInt8]($0) }
    }

    /// Encodes the JSON header, padded with spaces to a multiple of 8 bytes so the tensor data
    /// that follows the 8-byte length prefix starts 8-byte aligned.
    static func encodeHeader(_ tensors: [SafetensorsTensor], metadata: [String: String]) throws -> [UInt8] {
        var json = "{"
        var first = true
        if !metadata.isEmpty {
            json += "\"__metadata__\":{"
            for (index, key) in metadata.keys.sorted().enumerated() {
                if index > 0 {
                    json += ","
                }
                json += SafetensorsJSON.quoted(key) + ":" + SafetensorsJSON.quoted(metadata[key]!)
            }
            json += "}"
            first = false
        }

        var names = Set<String>()
        var offset = 0
        for tensor in tensors {
            try validateForWriting(tensor, seenNames: &names)
            let end = offset + tensor.bytes.count
            if !first {
                json += ","
            }
            first = false
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            json += SafetensorsJSON.quoted(tensor.name)
            json += ":{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}"
            offset = end
        }
        json += "}"

        var header = Array(json.utf8)
        let padding = (8 - header.count % 8) % 8
        header += [UInt8](repeating: UInt8(ascii: " "), count: padding)
        return header
    }

    private static func validateForWriting(_ tensor: SafetensorsTensor, seenNames: inout Set<String>) throws {
        if tensor.name == "__metadata__" {
            throw SafetensorsError(path: nil, description:
                "tensor name '__metadata__' is reserved for the file's metadata, so rename the tensor")
        }
        if !seenNames.insert(tensor.name).inserted {
            throw SafetensorsError(path: nil, description:
                "tensor name '\(tensor.name)' appears twice, but safetensors names must be unique")
        }
        if tensor.shape.contains(where: { $0 < 0 }) {
            throw SafetensorsError(path: nil, description:
                "tensor '\(tensor.name)' has a negative dimension in shape \(tensor.shape)")
        }

        let expected = SafetensorsLayout.byteCount(shape: tensor.shape, dtype: tensor.dtype)
        if expected != tensor.bytes.count {
            let needed = expected.map(String.init) ?? "more than Int.max"
            throw SafetensorsError(path: nil, description:
                "tensor '\(tensor.name)' has \(tensor.bytes.count) bytes, but shape \(tensor.shape) of "
                + "\(tensor.dtype.rawValue) needs \(needed)")
        }
    }

    // MARK: Reading

    private static func size<Count: BinaryInteger>(_ count: Count) -> String {
        SafetensorsLayout.formatByteCount(UInt64(count))
    }

    private static func readContents(from source: SafetensorsSource) throws -> SafetensorsContents {
        let header = try readHeader(from: source)
        let dataStart = 8 + header.headerByteCount

        var tensors: [String: SafetensorsTensor] = [:]
        for info in header.tensors {
            // The header check proved that every range lies inside the file, so each read is
            // bounded by the file size.
            let bytes = try source.read(dataStart + info.dataOffsets.lowerBound, info.dataOffsets.count)
            tensors[info.name] = SafetensorsTensor(name: info.name, dtype: info.dtype, shape: info.shape, bytes: bytes)
        }
        return SafetensorsContents(tensors: tensors, order: header.tensors.map(\.name), metadata: header.metadata)
    }

    private static func readHeader(from source: SafetensorsSource) throws -> SafetensorsHeader {
        let fail = { (problem: String) in
            SafetensorsError(path: source.description, description: "safetensors file \(source.description) \(problem)")
        }

        guard source.byteCount >= 8 else {
            throw fail("is truncated or not a safetensors file: it contains \(size(source.byteCount)), "
                + "fewer than the 8-byte header length")
        }
        let prefix = try source.read(0, 8)
        let declaredLength = prefix.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        if declaredLength > UInt64(maximumHeaderByteCount) {
            throw fail("is not a safetensors file or is corrupt: its first 8 bytes declare a header of "
                + "\(size(declaredLength)), more than the \(size(maximumHeaderByteCount)) limit")
        }
        let headerLength = Int(declaredLength)
        let available = source.byteCount - 8
        if headerLength > available {
            throw fail("is truncated: its first 8 bytes declare a header of \(size(declaredLength)) "
                + "but only \(size(available)) follow them")
        }

        let headerBytes = try source.read(8, headerLength)
        let json: SafetensorsJSON.Value
        do {
            json = try SafetensorsJSON.parse(headerBytes)
        } catch let error as SafetensorsJSON.ParseError {
            throw fail("has an invalid header: \(error.message)")
        }
        guard case .object(let members) = json else {
            throw fail("has an invalid header: the JSON is not an object")
        }

        let dataByteCount = available - headerLength
        var metadata: [String: String] = [:]
        var entries: [(info: SafetensorsTensorInfo, headerIndex: Int)] = []
        for (index, (name, value)) in members.enumerated() {
            if name == "__metadata__" {
                metadata = try parseMetadata(value, fail: fail)
            } else {
                let info = try parseTensorInfo(name: name, value, fail: fail)
                entries.append((info, index))
            }
        }

        let sorted = try validateLayout(entries, dataByteCount: dataByteCount, fail: fail)
        return SafetensorsHeader(metadata: metadata, tensors: sorted, headerByteCount: headerLength,
                                 dataByteCount: dataByteCount)
    }

    private static func parseMetadata(_ value: SafetensorsJSON.Value, fail: (String) -> SafetensorsError) throws -> [String: String] {
        guard case .object(let pairs) = value else {
            throw fail("has an invalid header: \"__metadata__\" is not a JSON object")
        }
        var metadata: [String: String] = [:]
        for (key, item) in pairs {
            guard case .string(let text) = item else {
                throw fail("has an invalid header: metadata value '\(key)' is not a string")
            }
            metadata[key] = text
        }
        return metadata
    }

    private static func parseTensorInfo(name: String, _ value: SafetensorsJSON.Value,
                                        fail: (String) -> SafetensorsError) throws -> SafetensorsTensorInfo {
        func invalid(_ problem: String) -> SafetensorsError {
            fail("has an invalid header: tensor '\(name)' \(problem)")
        }
        guard case .object(let fields) = value else {
            throw invalid("is not a JSON object")
        }
        func field(_ key: String) -> SafetensorsJSON.Value? {
            fields.first { $0.0 == key }?.1
        }

        guard case .string(let dtypeName)? = field("dtype") else {
            throw invalid("has no \"dtype\" string")
        }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            throw invalid("has unknown dtype '\(dtypeName)'")
        }

        guard case .array(let shapeValues)? = field("shape") else {
            throw invalid("has no \"shape\" array")
        }
        var shape: [Int] = []
        for dimension in shapeValues {
            guard let size = dimension.integer, size >= 0 else {
                throw invalid("has a shape entry that is not a non-negative integer")
            }
            shape.append(size)
        }

        guard case .array(let offsetValues)? = field("data_offsets"), offsetValues.count == 2,
              let begin = offsetValues[0].integer, let end = offsetValues[1].integer else {
            throw invalid("has no \"data_offsets\" pair of integers")
        }
        guard begin >= 0, begin <= end else {
            throw invalid("has invalid data_offsets [\(begin), \(end)]")
        }
        guard let expected = SafetensorsLayout.byteCount(shape: shape, dtype: dtype) else {
            throw invalid("has shape \(shape), whose byte count overflows a 64-bit integer")
        }
        guard end - begin == expected else {
            throw invalid("spans \(end - begin) bytes, but shape \(shape) of \(dtype.rawValue) needs \(expected)")
        }
        return SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end)
    }

    /// Sorts the entries by offset and checks that they cover the data exactly. Empty tensors
    /// sort before a non-empty tensor at the same offset, and ties keep header order, which
    /// reproduces the order in which `write` laid them out.
    private static func validateLayout(_ entries: [(info: SafetensorsTensorInfo, headerIndex: Int)], dataByteCount: Int,
                                       fail: (String) -> SafetensorsError) throws -> [SafetensorsTensorInfo] {
        let declaredEnd = entries.map(\.info.dataOffsets.upperBound).max() ?? 0
        if declaredEnd > dataByteCount {
            throw fail("is truncated: its header declares \(size(declaredEnd)) of tensor data "
                + "but the file contains \(size(dataByteCount))")
        }

        let sorted = entries.sorted { left, right in
            let a = left.info.dataOffsets
            let b = right.info.dataOffsets
            if a.lowerBound != b.lowerBound {
                return a.lowerBound < b.lowerBound
            }
            if a.upperBound != b.upperBound {
                return a.upperBound < b.upperBound
            }
            return left.headerIndex < right.headerIndex
        }.map(\.info)

        var covered = 0
        var previous: SafetensorsTensorInfo?
        for info in sorted {
            let range = info.dataOffsets
            if range.lowerBound < covered, let previous {
                throw fail("has an invalid header: tensors '\(previous.name)' and '\(info.name)' overlap "
                    + "(bytes \(previous.dataOffsets) and \(range) of the data)")
            }
            if range.lowerBound > covered {
                throw fail("has an invalid header: bytes \(covered)..<\(range.lowerBound) of the data belong to no tensor")
            }
            covered = range.upperBound
            previous = info
        }
        if covered < dataByteCount {
            throw fail("has \(size(dataByteCount - covered)) after the last tensor's data "
                + "that belong to no tensor")
        }
        return sorted
    }
}

/// Byte-count arithmetic shared by reading and writing.
enum SafetensorsLayout {
    /// Returns the product of `shape` times the element size, or nil if a dimension is negative
    /// or the product overflows `Int`.
    static func byteCount(shape: [Int], dtype: SafetensorsDType) -> Int? {
        var count = dtype.byteSize
        for dimension in shape {
            guard dimension >= 0 else {
                return nil
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            if overflow {
                return nil
            }
            count = product
        }
        return count
    }

    /// Formats a byte count for messages: exact below 1000, otherwise in decimal units with the
    /// exact count in brackets so that two close sizes never print the same.
    static func formatByteCount(_ count: UInt64) -> String {
        if count == 1 {
            return "1 byte"
        }
        if count < 1000 {
            return "\(count) bytes"
        }
        let units = ["kB", "MB", "GB", "TB", "PB", "EB"]
        var value = Double(count) / 1000
        var unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10) \(units[unit]) (\(count) bytes)"
    }
}

/// Random-access reads from a file or an in-memory buffer, so one validator serves both.
private struct SafetensorsSource {
    let description: String
    let byteCount: Int
    let read: (_ offset: Int, _ count: Int) throws -> [UInt8]

    init(description: String, byteCount: Int, read: @escaping (_ offset: Int, _ count: Int) throws -> [UInt8]) {
        self.description = description
        self.byteCount = byteCount
        self.read = read
    }
}

/// A file opened read-only, with its size taken once at open.
private final class ReadOnlyFile {
    let path: String
    let descriptor: Int32
    let byteCount: Int

    init(path: String) throws {
        // O_NONBLOCK keeps a FIFO at the path from blocking the open until a writer comes;
        // regular files, the only kind read below, ignore it.
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if descriptor < 0 {
            throw FileIOError(operation: "open", path: path, code: errno)
        }
        var status = stat()
        if fstat(descriptor, &status) != 0 {
            let code = errno
            close(descriptor)
            throw FileIOError(operation: "stat", path: path, code: code)
        }
        let kind = status.st_mode & S_IFMT
        if kind != S_IFREG {
            close(descriptor)
            var fileKind = "a device or other special file"
            if kind == S_IFDIR {
                fileKind = "a folder"
            } else if kind == S_IFIFO {
                fileKind = "a named pipe"
            }
            throw SafetensorsError(path: path, description: "\(path) is \(fileKind), not a safetensors file; pass the file itself")
        }
        self.path = path
        self.descriptor = descriptor
        self.byteCount = Int(status.st_size)
    }

    func release() {
        close(descriptor)
    }

    /// Reads exactly `count` bytes at `offset`, and throws if the file shrank since it was opened.
    func read(at offset: Int, count: Int) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: count) { buffer, initializedCount in
            var done = 0
            while done < count {
                let result = pread(descriptor, buffer.baseAddress! + done, count - done, off_t(offset + done))
                if result < 0 {
                    if errno == EINTR {
                        continue
                    }
                    throw FileIOError(operation: "read", path: path, code: errno)
                }
                if result == 0 {
                    throw SafetensorsError(path: path, description:
                        "safetensors file \(path) became shorter while it was being read")
                }
                done += result
            }
            initializedCount = count
        }
    }
}

/// The JSON subset parser for safetensors headers.
///
/// A hand-written parser, rather than Foundation's, so that duplicate keys are rejected
/// instead of silently merged, object order is kept, integers are exact 64-bit values, and
/// nesting depth is bounded so that a hostile header cannot overflow the stack.
enum SafetensorsJSON {
    indirect enum Value: Equatable {
        case object([(String, Value)])
        case array([Value])
        case string(String)
        /// A number kept as its JSON text, so integers convert without going through Double.
        case number(String)
        case bool(Bool)
        case null

        /// The value as an `Int`, or nil unless it is an integer literal that fits.
        var integer: Int? {
            guard case .number(let text) = self else {
                return nil
            }
            return Int(text)
        }

        static func == (left: Value, right: Value) -> Bool {
            switch (left, right) {
            case (.object(let a), .object(let b)):
                return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
            case (.array(let a), .array(let b)): return a == b
            case (.string(let a), .string(let b)): return a == b
            case (.number(let a), .number(let b)): return a == b
            case (.bool(let a), .bool(let b)): return a == b
            case (.null, .null): return true
            default: return false
            }
        }
    }

    struct ParseError: Error {
        let message: String
    }

    static let maximumDepth = 64

    /// Returns `text` as a JSON string literal.
    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }

    /// Parses one JSON value that may be surrounded by whitespace (the header's padding).
    static func parse(_ bytes: [UInt8]) throws -> Value {
        var parser = Parser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.index < bytes.count {
            throw parser.error("unexpected data after the JSON value")
        }
        return value
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) {
            self.bytes = bytes
        }

        func error(_ problem: String) -> ParseError {
            ParseError(message: "invalid JSON at offset \(index) of the header: \(problem)")
        }

        mutating func skipWhitespace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) {
                index += 1
            }
        }

        mutating func parseValue(depth: Int) throws -> Value {
            guard index < bytes.count else {
                throw error("expected a value but the header ended")
            }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                return try parseObject(depth: depth + 1)
            case UInt8(ascii: "["):
                return try parseArray(depth: depth + 1)
            case UInt8(ascii: "\""):
                return .string(try parseString())
            case UInt8(ascii: "t"):
                try expectLiteral("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try expectLiteral("false")
                return .bool(false)
            case UInt8(ascii: "n"):
                try expectLiteral("null")
                return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return .number(try parseNumber())
            default:
                throw error("expected a value")
            }
        }

        mutating func parseObject(depth: Int) throws -> Value {
            if depth > SafetensorsJSON.maximumDepth {
                throw error("nested deeper than \(SafetensorsJSON.maximumDepth) levels")
            }
            index += 1
            var members: [(String, Value)] = []
            var keys = Set<String>()
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(members)
            }
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                    throw error("expected a string key")
                }
                let keyStart = index
                let key = try parseString()
                if !keys.insert(key).inserted {
                    index = keyStart
                    throw error("duplicate key '\(key)'")
                }
                skipWhitespace()
                try expect(":")
                skipWhitespace()
                members.append((key, try parseValue(depth: depth)))
                skipWhitespace()
                if try expectEither(",", "}") == "}" {
                    return .object(members)
                }
            }
        }

        mutating func parseArray(depth: Int) throws -> Value {
            if depth > SafetensorsJSON.maximumDepth {
                throw error("nested deeper than \(SafetensorsJSON.maximumDepth) levels")
            }
            index += 1
            var elements: [Value] = []
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(elements)
            }
            while true {
                skipWhitespace()
                elements.append(try parseValue(depth: depth))
                skipWhitespace()
                if try expectEither(",", "]") == "]" {
                    return .array(elements)
                }
            }
        }

        mutating func parseString() throws -> String {
            let start = index
            index += 1
            var utf8: [UInt8] = []
            while true {
                guard index < bytes.count else {
                    throw error("unterminated string")
                }
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    guard let text = String(validating: utf8, as: UTF8.self) else {
                        index = start
                        throw error("string is not valid UTF-8")
                    }
                    return text
                case UInt8(ascii: "\\"):
                    try parseEscape(into: &utf8)
                case 0..<0x20:
                    index -= 1
                    throw error("control character in a string")
                default:
                    utf8.append(byte)
                }
            }
        }

        mutating func parseEscape(into utf8: inout [UInt8]) throws {
            guard index < bytes.count else {
                throw error("unterminated string")
            }
            let byte = bytes[index]
            index += 1
            let simple: [UInt8: UInt8] = [
                UInt8(ascii: "\""): 0x22, UInt8(ascii: "\\"): 0x5C, UInt8(ascii: "/"): 0x2F,
                UInt8(ascii: "b"): 0x08, UInt8(ascii: "f"): 0x0C, UInt8(ascii: "n"): 0x0A,
                UInt8(ascii: "r"): 0x0D, UInt8(ascii: "t"): 0x09,
            ]
            if let replacement = simple[byte] {
                utf8.append(replacement)
                return
            }
            guard byte == UInt8(ascii: "u") else {
                index -= 1
                throw error("invalid escape sequence")
            }

            var value = try parseHexQuad()
            if (0xD800..<0xDC00).contains(value) {
                // A high surrogate must be followed by an escaped low surrogate.
                guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                    throw error("unpaired UTF-16 surrogate")
                }
                index += 2
                let low = try parseHexQuad()
                guard (0xDC00..<0xE000).contains(low) else {
                    throw error("unpaired UTF-16 surrogate")
                }
                value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00..<0xE000).contains(value) {
                throw error("unpaired UTF-16 surrogate")
            }
            utf8.append(contentsOf: String(Character(Unicode.Scalar(value)!)).utf8)
        }

        mutating func parseHexQuad() throws -> UInt32 {
            guard index + 4 <= bytes.count,
                  let value = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16),
                  bytes[index..<index + 4].allSatisfy({ $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "-") }) else {
                throw error("invalid \\u escape")
            }
            index += 4
            return value
        }

        mutating func parseNumber() throws -> String {
            let start = index
            if bytes[index] == UInt8(ascii: "-") {
                index += 1
            }
            guard index < bytes.count, isDigit(bytes[index]) else {
                throw error("invalid number")
            }
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
            } else {
                skipDigits()
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                guard index < bytes.count, isDigit(bytes[index]) else {
                    throw error("invalid number")
                }
                skipDigits()
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                    index += 1
                }
                guard index < bytes.count, isDigit(bytes[index]) else {
                    throw error("invalid number")
                }
                skipDigits()
            }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }

        private func isDigit(_ byte: UInt8) -> Bool {
            byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
        }

        private mutating func skipDigits() {
            while index < bytes.count, isDigit(bytes[index]) {
                index += 1
            }
        }

        mutating func expectLiteral(_ literal: String) throws {
            let expected = Array(literal.utf8)
            guard index + expected.count <= bytes.count, Array(bytes[index..<index + expected.count]) == expected else {
                throw error("expected a value")
            }
            index += expected.count
        }

        mutating func expect(_ character: Unicode.Scalar) throws {
            guard index < bytes.count, bytes[index] == UInt8(character.value) else {
                throw error("expected '\(character)'")
            }
            index += 1
        }

        /// Consumes one of two expected characters and returns it.
        mutating func expectEither(_ first: Unicode.Scalar, _ second: Unicode.Scalar) throws -> Unicode.Scalar {
            guard index < bytes.count else {
                throw error("expected '\(first)' or '\(second)' but the header ended")
            }
            let byte = bytes[index]
            if byte == UInt8(first.value) || byte == UInt8(second.value) {
                index += 1
                return Unicode.Scalar(byte)
            }
            throw error("expected '\(first)' or '\(second)'")
        }
    }
}
