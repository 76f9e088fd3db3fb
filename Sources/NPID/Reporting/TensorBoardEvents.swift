#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The protocol-buffer wire format, only as far as TensorBoard's `Event` needs it.
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(rest & 0x7F) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    /// Writes the key of a field: (field number << 3) | wire type.
    mutating func key(_ field: Int, wireType: Int) {
        varint(UInt64(field << 3 | wireType))
    }

    mutating func double(_ field: Int, _ value: Double) {
        key(field, wireType: 1)
        littleEndian(value.bitPattern)
    }

    mutating func float(_ field: Int, _ value: Float) {
        key(field, wireType: 5)
        littleEndian(value.bitPattern)
    }

    /// Writes an int64 field. Negative values take ten bytes, as protobuf encodes them.
    mutating func int64(_ field: Int, _ value: Int64) {
        key(field, wireType: 0)
        varint(UInt64(bitPattern: value))
    }

    mutating func lengthDelimited(_ field: Int, _ payload: [UInt8]) {
        key(field, wireType: 2)
        varint(UInt64(payload.count))
        bytes += payload
    }

    mutating func string(_ field: Int, _ value: String) {
        lengthDelimited(field, Array(value.utf8))
    }

    private mutating func littleEndian<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }
}

/// TensorBoard `Event` messages (tensorflow/core/util/event.proto) and the TFRecord framing
/// of event files, written by hand so that no TensorFlow or protobuf library is needed.
///
/// Fields used: Event.wall_time = 1 (double, seconds since 1970), Event.step = 2 (int64),
/// Event.file_version = 3 (string), Event.summary = 5; Summary.value = 1 (repeated);
/// Summary.Value.tag = 1 (string), Summary.Value.simple_value = 2 (float).
public enum TensorBoardEvent {
    /// The version string TensorBoard expects in the first event of a file.
    public static let fileVersion = "brain.Event:2"

    /// The first event of every file: wall time and the file version.
    public static func fileVersionEvent(wallTime: Double) -> [UInt8] {
        var event = ProtobufWriter()
        event.double(1, wallTime)
        event.string(3, fileVersion)
        return event.bytes
    }

    /// Returns one event carrying scalar summaries, one `Summary.Value` per (tag, value).
    public static func scalarEvent(wallTime: Double, step: Int64, scalars: [(tag: String, value: Float)]) -> [UInt8] {
        var summary = ProtobufWriter()
        for scalar in scalars {
            var value = ProtobufWriter()
            value.string(1, scalar.tag)
            value.float(2, scalar.value)
            summary.lengthDelimited(1, value.bytes)
        }
        var event = ProtobufWriter()
        event.double(1, wallTime)
        event.int64(2, step)
        event.lengthDelimited(5, summary.bytes)
        return event.bytes
    }

    /// Frames a payload as a TFRecord: length (uint64), masked CRC-32C of those 8 bytes,
    /// the payload, masked CRC-32C of the payload; integers little-endian.
    public static func record(_ payload: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        let length = withUnsafeBytes(of: UInt64(payload.count).littleEndian, Array.init)
        bytes += length
        withUnsafeBytes(of: CRC32C.masked(CRC32C.checksum(length)).littleEndian) { bytes += $0 }
        bytes += payload
        withUnsafeBytes(of: CRC32C.masked(CRC32C.checksum(payload)).littleEndian) { bytes += $0 }
        return bytes
    }
}

/// Appends scalar summaries to a new TensorBoard event file, so that
/// `tensorboard --logdir DIR` plots them.
///
/// Each writer starts its own file, `events.out.tfevents.SECONDS.HOST.PID`. TensorBoard
/// reads every such file of a folder, so a resumed run uses `init(directory:replacingWith:)`
/// to replace the older files with one that contains the epochs kept in metrics.jsonl.
/// Without it, the epochs after the resumed checkpoint would appear twice. Every record is
/// flushed to disk before the call returns.
public final class TensorBoardWriter {
    public let path: String

    /// The prefix TensorBoard looks for in the names of event files.
    static let fileNamePrefix = "events.out.tfevents."

    /// Creates `directory` when needed and starts a file with the file-version event.
    public init(directory: String, now: Date = Date()) throws {
        path = try Self.newFilePath(in: directory, now: now)
        try append(TensorBoardEvent.fileVersionEvent(wallTime: now.timeIntervalSince1970))
    }

    /// Writes a new file holding the file-version event and one event per record of
    /// `history`, then deletes the folder's other event files, so the folder shows exactly
    /// these epochs. The new file is complete before any old one goes, so a crash in between
    /// leaves duplicates for the next rewrite to remove, never a gap.
    ///
    /// Every event carries `now` as its wall time, because metrics.jsonl stores how long each
    /// epoch took but not when it ended.
    public init(directory: String, replacingWith history: [EpochMetrics], now: Date = Date()) throws {
        path = try Self.newFilePath(in: directory, now: now)
        var bytes = TensorBoardEvent.record(TensorBoardEvent.fileVersionEvent(wallTime: now.timeIntervalSince1970))
        for metrics in history {
            bytes += TensorBoardEvent.record(Self.event(metrics, now: now))
        }
        try AtomicFile.write(bytes, to: path)

        let ownName = URL(fileURLWithPath: path).lastPathComponent
        for name in try FileManager.default.contentsOfDirectory(atPath: directory)
        where name.hasPrefix(Self.fileNamePrefix) && name != ownName {
            try FileManager.default.removeItem(atPath: directory + "/" + name)
        }
    }

    private static func newFilePath(in directory: String, now: Date) throws -> String {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let host = (ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "localhost")
            .filter { $0.isLetter || $0.isNumber || $0 == "-" }
        return directory + "/" + fileNamePrefix + "\(Int(now.timeIntervalSince1970)).\(host).\(getpid())"
    }

    /// Appends one event with the given scalars at `step`.
    public func add(scalars: [(tag: String, value: Double)], step: Int, now: Date = Date()) throws {
        try append(Self.event(scalars: scalars, step: step, now: now))
    }

    /// Appends an epoch's loss, learning rate, kNN accuracies (when measured) and throughput,
    /// at step = epoch number.
    public func add(_ metrics: EpochMetrics, now: Date = Date()) throws {
        try append(Self.event(metrics, now: now))
    }

    private static func event(_ metrics: EpochMetrics, now: Date) -> [UInt8] {
        var scalars: [(tag: String, value: Double)] = [("loss", metrics.loss), ("lr", metrics.lr)]
        if let top1 = metrics.knnTop1 {
            scalars.append(("knn_top1", top1))
        }
        if let top5 = metrics.knnTop5 {
            scalars.append(("knn_top5", top5))
        }
        scalars.append(("images_per_s", metrics.imagesPerSecond))
        return event(scalars: scalars, step: metrics.epoch, now: now)
    }

    private static func event(scalars: [(tag: String, value: Double)], step: Int, now: Date) -> [UInt8] {
        TensorBoardEvent.scalarEvent(wallTime: now.timeIntervalSince1970, step: Int64(step),
                                     scalars: scalars.map { ($0.tag, Float($0.value)) })
    }

    private func append(_ payload: [UInt8]) throws {
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        if descriptor < 0 {
            throw FileIOError(operation: "open", path: path, code: errno)
        }
        defer { close(descriptor) }
        var writer = FileDescriptorWriter(descriptor: descriptor, path: path)
        try writer.write(TensorBoardEvent.record(payload))
        try writer.synchronize()
    }
}
