#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// One epoch's record in the metrics log.
public struct EpochMetrics: Codable, Sendable, Equatable {
    /// Epoch number, counted from 1.
    public var epoch: Int
    /// Mean training loss over the epoch.
    public var loss: Double
    /// Learning rate used in the epoch.
    public var lr: Double
    public var imagesPerSecond: Double
    /// Weighted kNN top-1 accuracy in percent, nil when not measured.
    public var knnTop1: Double?
    /// Weighted kNN top-5 accuracy in percent, nil when not measured.
    public var knnTop5: Double?
    /// Wall-clock duration of the epoch in seconds.
    public var seconds: Double

    public init(epoch: Int, loss: Double, lr: Double, imagesPerSecond: Double,
                knnTop1: Double? = nil, knnTop5: Double? = nil, seconds: Double) {
        self.epoch = epoch
        self.loss = loss
        self.lr = lr
        self.imagesPerSecond = imagesPerSecond
        self.knnTop1 = knnTop1
        self.knnTop5 = knnTop5
        self.seconds = seconds
    }

    enum CodingKeys: String, CodingKey {
        case epoch
        case loss
        case lr
        case imagesPerSecond = "images_per_s"
        case knnTop1 = "knn_top1"
        case knnTop5 = "knn_top5"
        case seconds
    }

    /// Returns the record as one line of JSON without the newline, with the keys in the order
    /// epoch, loss, lr, images_per_s, knn_top1, knn_top5, seconds, and null for a missing
    /// accuracy. NaN and infinities, which JSON cannot represent, are written as the strings
    /// "NaN", "Infinity" and "-Infinity". `MetricsLog.read` decodes them and then rejects the
    /// line, because npid train stops at a non-finite loss and never records one.
    public func jsonLine() -> String {
        let fields: [(CodingKeys, String)] = [
            (.epoch, String(epoch)),
            (.loss, Self.json(loss)),
            (.lr, Self.json(lr)),
            (.imagesPerSecond, Self.json(imagesPerSecond)),
            (.knnTop1, knnTop1.map(Self.json) ?? "null"),
            (.knnTop5, knnTop5.map(Self.json) ?? "null"),
            (.seconds, Self.json(seconds)),
        ]
        return "{" + fields.map { "\"\($0.0.stringValue)\":\($0.1)" }.joined(separator: ",") + "}"
    }

    /// Swift's shortest round-trip spelling of a finite Double ("0.03", "1e-05", "8.0") is valid JSON.
    private static func json(_ value: Double) -> String {
        if value.isNaN {
            return "\"NaN\""
        }
        if value.isInfinite {
            return value > 0 ? "\"Infinity\"" : "\"-Infinity\""
        }
        return "\(value)"
    }
}

/// A metrics log line that cannot be parsed or breaks the sequence of epochs, with the file
/// and the 1-based line number.
public struct MetricsLogError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let line: Int
    /// The problem, worded to follow "line N", such as "repeats epoch 2 where epoch 4 was expected".
    public let problem: String

    public var description: String {
        "metrics log \(path) line \(line) \(problem); correct that line, or delete it and the lines after it"
    }
}

/// The per-epoch metrics file: JSON Lines, one `EpochMetrics` object per line, appended as
/// each epoch ends and cut back with `truncate(afterEpoch:)` when training resumes from an
/// earlier checkpoint.
public struct MetricsLog: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    /// Appends one record as a full line and flushes it to disk with fsync. Creates the file
    /// if it does not exist.
    ///
    /// An interrupted append can leave a last line without its newline. Before appending,
    /// such a line is cut off if it does not parse, because its epoch was never recorded
    /// completely, and is ended with a newline if it does parse.
    public func append(_ metrics: EpochMetrics) throws {
        let descriptor = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        if descriptor < 0 {
            throw FileIOError(operation: "open", path: path, code: errno)
        }
        defer { close(descriptor) }

        var line = Array((metrics.jsonLine() + "\n").utf8)
        if let tail = try unterminatedTail(descriptor) {
            if Self.decode(tail.text) != nil {
                line.insert(UInt8(ascii: "\n"), at: 0)
            } else if ftruncate(descriptor, off_t(tail.start)) != 0 {
                throw FileIOError(operation: "truncate the incomplete last line of", path: path, code: errno)
            }
        }

        var writer = FileDescriptorWriter(descriptor: descriptor, path: path)
        try writer.write(line)
        try writer.synchronize()
    }

    /// Reads every record in file order. Blank lines are skipped, and so is a last line without
    /// a newline that does not parse, which an interrupted append leaves behind.
    ///
    /// npid train writes consecutive epochs in order with finite values, starting at 1. A run
    /// resumed without records of its earlier epochs (a missing or emptied log) starts after
    /// the checkpoint's epoch instead. `read` treats anything else as damage. Throws `MetricsLogError` for a malformed line, an epoch out of sequence, a
    /// non-finite value, or an epoch above `configuredEpochs` when that is given. Throws
    /// `FileIOError` if the file cannot be read, including when it does not exist.
    public func read(configuredEpochs: Int? = nil) throws -> [EpochMetrics] {
        let text = try readText()
        var records: [EpochMetrics] = []
        // Swift reads "\r\n" as one character, so a log edited on Windows needs its own separator.
        let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
        for (index, line) in lines.enumerated() {
            if line.allSatisfy(\.isWhitespace) {
                continue
            }
            let isUnterminatedLast = index == lines.count - 1
            switch Self.decodeWithReason(String(line)) {
            case .success(let record):
                if let problem = Self.sequenceProblem(record, previous: records.last, configuredEpochs: configuredEpochs) {
                    throw MetricsLogError(path: path, line: index + 1, problem: problem)
                }
                records.append(record)
            case .failure(let reason):
                if isUnterminatedLast {
                    continue
                }
                throw MetricsLogError(path: path, line: index + 1, problem: "is not a valid epoch record: \(reason)")
            }
        }
        return records
    }

    /// Keeps only the records with `epoch <= afterEpoch`, rewriting the file atomically, so a
    /// run resumed from that epoch's checkpoint does not log the later epochs twice. Does
    /// nothing if the file does not exist. Throws `MetricsLogError` for the damage that `read`
    /// rejects, because cutting a log whose epochs repeat or jump would keep the damage.
    public func truncate(afterEpoch epoch: Int) throws {
        if access(path, F_OK) != 0 && errno == ENOENT {
            return
        }
        let earlierRecords = try read().filter { $0.epoch <= epoch }
        let text = earlierRecords.map { $0.jsonLine() + "\n" }.joined()
        try AtomicFile.write(Array(text.utf8), to: path)
    }

    // MARK: Helpers

    /// Describes why a decoded record cannot follow `previous`, the record before it, or
    /// returns nil.
    private static func sequenceProblem(_ record: EpochMetrics, previous: EpochMetrics?, configuredEpochs: Int?) -> String? {
        if let previous, record.epoch != previous.epoch + 1 {
            let verb = record.epoch <= previous.epoch ? "repeats" : "records"
            return "\(verb) epoch \(record.epoch) where epoch \(previous.epoch + 1) was expected"
        }
        if record.epoch < 1 {
            return "records epoch \(record.epoch), but epochs count from 1"
        }
        if let configuredEpochs, record.epoch > configuredEpochs {
            return "records epoch \(record.epoch), but the run is configured for \(configuredEpochs) epochs"
        }
        let values: [(EpochMetrics.CodingKeys, Double?)] = [
            (.loss, record.loss), (.lr, record.lr), (.imagesPerSecond, record.imagesPerSecond),
            (.knnTop1, record.knnTop1), (.knnTop5, record.knnTop5), (.seconds, record.seconds),
        ]
        for case let (key, value?) in values where !value.isFinite {
            // Spelled as in the file, which stores non-finite numbers as JSON strings.
            let spelling = value.isNaN ? "NaN" : (value > 0 ? "Infinity" : "-Infinity")
            return "has \"\(key.stringValue)\": \"\(spelling)\", but npid train records only finite numbers"
        }
        return nil
    }

    private func readText() throws -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 {
            throw FileIOError(operation: "open", path: path, code: errno)
        }
        defer { close(descriptor) }
        return String(decoding: try readAll(descriptor), as: UTF8.self)
    }

    private func readAll(_ descriptor: Int32) throws -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        var offset = 0
        while true {
            let count = chunk.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, off_t(offset)) }
            if count < 0 {
                if errno == EINTR {
                    continue
                }
                throw FileIOError(operation: "read", path: path, code: errno)
            }
            if count == 0 {
                return bytes
            }
            bytes += chunk[0..<count]
            offset += count
        }
    }

    /// Returns the last line and its byte offset if the file does not end with a newline.
    private func unterminatedTail(_ descriptor: Int32) throws -> (start: Int, text: String)? {
        let bytes = try readAll(descriptor)
        guard let last = bytes.last, last != UInt8(ascii: "\n") else {
            return nil
        }
        let start = (bytes.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 }) ?? 0
        return (start, String(decoding: bytes[start...], as: UTF8.self))
    }

    static func decode(_ line: String) -> EpochMetrics? {
        if case .success(let record) = decodeWithReason(line) {
            return record
        }
        return nil
    }

    private static func decodeWithReason(_ line: String) -> Result<EpochMetrics, MetricsLineProblem> {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        do {
            return .success(try decoder.decode(EpochMetrics.self, from: Data(line.utf8)))
        } catch let error as DecodingError {
            // JSON has no NaN or infinity, so a bare one (or a number too large for a double)
            // fails the whole line, which deserves a clearer reason than "not a JSON object".
            if case .dataCorrupted = error, line.range(of: #":\s*-?(NaN|nan|Infinity|inf|[0-9.]+[eE]\+?[0-9]{3,})\s*[,}]"#,
                                                       options: .regularExpression) != nil {
                return .failure(MetricsLineProblem(reason: "a value is not a finite number, and npid train records only finite numbers"))
            }
            return .failure(MetricsLineProblem(describing: error))
        } catch {
            return .failure(MetricsLineProblem(reason: "\(error)"))
        }
    }
}

/// A short reason why one metrics line failed to decode, in place of DecodingError's long dump.
struct MetricsLineProblem: Error, CustomStringConvertible {
    let reason: String

    init(reason: String) {
        self.reason = reason
    }

    init(describing error: DecodingError) {
        switch error {
        case .keyNotFound(let key, _):
            reason = "missing key \"\(key.stringValue)\""
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            let key = context.codingPath.last?.stringValue ?? "the line"
            reason = "\"\(key)\" is not a valid \(Self.name(of: type))"
        case .dataCorrupted(let context):
            if let key = context.codingPath.last?.stringValue {
                reason = "\"\(key)\" has an invalid value"
            } else {
                reason = "the line is not a JSON object"
            }
        @unknown default:
            reason = "\(error)"
        }
    }

    var description: String {
        reason
    }

    private static func name(of type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "integer"
        case is Double.Type: return "number"
        default: return "\(type)"
        }
    }
}
