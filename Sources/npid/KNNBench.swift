import Foundation
import NPID
import Torch

/// `npid bench --knn`: times the weighted kNN on a synthetic bank and reports peak memory,
/// to show that the blocked similarity search stays bounded at ImageNet scale.
enum KNNBench {
    static let defaults = TrainingConfiguration.defaults
    static let defaultBlocks = WeightedKNN(temperature: defaults.temperature)

    static let specs: [OptionSpec] = [
        OptionSpec("--bank", value: "N", help: "bank rows (default 1281167, ImageNet's training set)"),
        OptionSpec("--queries", value: "Q", help: "query rows (default 50000, ImageNet's validation set)"),
        OptionSpec("--dim", value: "D", help: "feature dimension (default \(defaults.model.featureDimension))"),
        OptionSpec("--classes", value: "C", help: "classes of the random labels (default 1000)"),
        OptionSpec("--knn-k", value: "K", help: "neighbours of the vote (default \(defaults.neighborCount))"),
        OptionSpec("--knn-t", value: "T", help: "temperature σ of the vote (default \(defaults.temperature))"),
        OptionSpec("--query-chunk", value: "N", help: "queries per similarity block (default \(defaultBlocks.chunkSize))"),
        OptionSpec("--bank-chunk", value: "N", help: "bank rows per similarity block (default \(defaultBlocks.bankChunkSize))"),
        OptionSpec("--seed", value: "S", help: "seed of the random bank, queries and labels (default \(defaults.seed))"),
        OptionSpec("--device", value: "DEV", help: "cpu, cuda or cuda:N (default cpu)"),
        OptionSpec("--threads", value: "N", help: "libtorch threads (default: one per core)"),
    ]

    static func run(_ arguments: [String]) throws {
        let options = try ParsedOptions(arguments, specs: specs, command: "bench --knn")
        let bankCount = try positive(options, "--bank", default: 1_281_167)
        let queryCount = try positive(options, "--queries", default: 50_000)
        let dimension = try positive(options, "--dim", default: defaults.model.featureDimension)
        let classCount = try positive(options, "--classes", default: 1000)
        // The evaluation counts a classes × classes confusion matrix of Int in Swift arrays, and
        // Swift stops the process without a message when that allocation fails.
        try requireFitsMemory(bytes: Double(classCount) * Double(classCount) * Double(MemoryLayout<Int>.size),
                              request: "--classes \(classCount)", use: "the confusion matrix alone",
                              advice: "choose a smaller --classes")
        let neighborCount = try positive(options, "--knn-k", default: defaults.neighborCount)
        let queryChunk = try positive(options, "--query-chunk", default: defaultBlocks.chunkSize)
        let bankChunk = try positive(options, "--bank-chunk", default: defaultBlocks.bankChunkSize)
        let temperature = try knnTemperatureOption(options) ?? defaults.temperature
        let seed = try seedOption(options)
        let runtime = try runtimeOptions(options)
        let device = runtime.device

        try Torch.manualSeed(seed)
        let bank = try randomUnitRows(bankCount, dimension, device: device, blockRows: bankChunk)
        let bankLabels = try Tensor.randint(0, classCount, [bankCount], device: device)
        let queries = try randomUnitRows(queryCount, dimension, device: device, blockRows: bankChunk)
        let queryLabels = try Tensor.randint(0, classCount, [queryCount]).toArray(of: Int64.self).map { Int($0) }
        try Torch.synchronize(device)
        let residentBefore = ProcessMemory.kilobytes("VmRSS")

        let knn = WeightedKNN(neighborCount: neighborCount, temperature: temperature, chunkSize: queryChunk,
                              bankChunkSize: bankChunk)
        let started = Date()
        let accuracy = try knn.evaluate(queries: queries, queryLabels: queryLabels, bank: bank, bankLabels: bankLabels,
                                        classCount: classCount)
        try Torch.synchronize(device)
        let seconds = Date().timeIntervalSince(started)

        let fields: [(String, String)] = [
            ("event", "\"bench\""), ("mode", "\"knn\""), ("bank", "\(bankCount)"), ("queries", "\(queryCount)"),
            ("dim", "\(dimension)"), ("classes", "\(classCount)"), ("k", "\(min(neighborCount, bankCount))"),
            ("query_chunk", "\(queryChunk)"), ("bank_chunk", "\(bankChunk)"),
            ("device", "\"\(device)\""), ("threads", "\(Torch.threadCount)"),
            ("seconds", String(format: "%.3f", seconds)),
            ("queries_per_s", String(format: "%.1f", Double(queryCount) / max(seconds, 1e-9))),
            ("bank_mb", String(format: "%.1f", Double(bankCount * dimension * 4) / 1_048_576)),
            ("similarity_block_mb", String(format: "%.1f", Double(min(queryChunk, queryCount) * min(bankChunk, bankCount) * 4) / 1_048_576)),
            ("rss_before_knn_mb", megabytes(residentBefore)),
            ("peak_rss_mb", megabytes(ProcessMemory.kilobytes("VmHWM"))),
            ("top1", String(format: "%.3f", accuracy.top1)),
        ]
        Console.output("{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
    }

    /// Formats a /proc figure in kB as MiB with one decimal, or JSON null when it is missing.
    static func megabytes(_ kilobytes: Int?) -> String {
        kilobytes.map { String(format: "%.1f", Double($0) / 1024) } ?? "null"
    }

    /// Reads a whole-number option that must be at least 1.
    static func positive(_ options: ParsedOptions, _ flag: String, default value: Int) throws -> Int {
        let number = try options.int(flag) ?? value
        guard number >= 1 else { throw UsageError("\(flag) must be at least 1, got \(number)") }
        return number
    }

    /// Draws unit-length random rows [count, dimension], `blockRows` rows at a time, so that the
    /// temporaries stay small next to the result.
    static func randomUnitRows(_ count: Int, _ dimension: Int, device: Device, blockRows: Int) throws -> Tensor {
        let rows = try Tensor.zeros([count, dimension], device: device)
        var start = 0
        while start < count {
            let length = min(blockRows, count - start)
            let block = try Tensor.randn([length, dimension], device: device).l2Normalized(dim: 1)
            try rows.narrowed(dim: 0, start: start, length: length).copy(from: block)
            start += length
        }
        return rows
    }
}

/// Memory figures of this process from /proc/self/status (Linux only).
///
/// NOTE: these are host memory only. With --device cuda the bank and the similarity blocks
/// live in GPU memory, which this benchmark does not measure.
enum ProcessMemory {
    /// Returns a field such as VmHWM (peak resident set) or VmRSS in kB, nil where
    /// /proc/self/status does not exist.
    static func kilobytes(_ field: String) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
            return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
        }
        return nil
    }
}
