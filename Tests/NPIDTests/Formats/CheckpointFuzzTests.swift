#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Testing
@testable import NPID
import Torch

/// Randomised mutations of a real checkpoint. Raw mutations flip bits, edit bytes, truncate
/// the file, change the header length and splice the header. Edits of the metadata, the
/// configuration and the tensors are re-signed with a valid checksum, so they reach the checks
/// behind it. Every input must load or fail with a `SafetensorsError` or `CheckpointError`
/// naming the file, quickly and without large allocations.
///
/// `NPID_FUZZ_INPUTS=N` sets the number of raw mutations (default 2000); a third as many
/// re-signed edits follow. `NPID_FUZZ_SEED=S` draws other mutations (default 2024).
@Suite struct CheckpointFuzzTests {
    static let rawInputCount = environmentNumber("NPID_FUZZ_INPUTS") ?? 2000
    static let seed = UInt64(environmentNumber("NPID_FUZZ_SEED") ?? 2024)

    static func environmentNumber(_ name: String) -> Int? {
        guard let text = ProcessInfo.processInfo.environment[name], let value = Int(text), value > 0 else {
            return nil
        }
        return value
    }

    /// Builds a checkpoint as small as the format allows, so thousands of inputs take seconds:
    /// ResNet-18 of width 1, 4-d features, a bank of 6 rows, momentum for the stem and the
    /// projection. Parsing its header dominates the time per input.
    static func baseCheckpoint() throws -> Checkpoint {
        var configuration = TrainingConfiguration()
        configuration.model = ModelConfiguration(architecture: .resnet18, stem: .cifar, width: 1, featureDimension: 4)
        configuration.batchSize = 3
        configuration.epochs = 4
        let model = try ResNet(configuration.model)
        var momentum: [String: SafetensorsTensor] = [:]
        for entry in model.state where entry.isParameter && !entry.name.hasPrefix("layer") {
            let values = MethodReference.waves(count: entry.tensor.shape.reduce(1, *), phase: 0.3).map { Float($0) }
            momentum[entry.name] = SafetensorsTensor(name: entry.name, shape: entry.tensor.shape, values: values)
        }
        let bank = MethodReference.unitRows(MethodReference.waves(count: 24, phase: 1.1), columns: 4).map { Float($0) }
        return Checkpoint(configuration: configuration, epochsDone: 1, stepsDone: 3, normalizationConstant: 12.5,
                          classNames: ["cat", "dog"], modelState: try model.stateEntries(), momentumBuffers: momentum,
                          memoryBank: SafetensorsTensor(name: "memory_bank", shape: [6, 4], values: bank),
                          cpuRandomState: try SafetensorsTensor(name: "rng.cpu", tensor: Torch.cpuRandomState()),
                          stepInEpoch: 1, epochLossSum: 4.5, epochImageCount: 3)
    }

    /// Outcome counts of one fuzzing pass.
    struct Tally: CustomStringConvertible {
        var loaded = 0
        var rejected = 0
        var slowest = 0.0

        var description: String {
            "\(loaded + rejected) inputs, \(loaded) loaded, \(rejected) rejected, slowest \(String(format: "%.1f", slowest * 1000)) ms"
        }
    }

    @Test(.timeLimit(.minutes(3)))
    func mutatedCheckpointsFailCleanly() throws {
        let base = try Self.baseCheckpoint()
        let original = try base.serialized()
        #expect(try Checkpoint.parse(original).epochsDone == 1)
        let contents = try Safetensors.parse(original)
        let headerEnd = 8 + Int(CLIFiles.unsignedLittleEndian(original[0..<8]))
        let model = try ResNet(base.configuration.model)
        let peakBefore = Self.peakResidentBytes()
        var generator = CLIRandom(seed: Self.seed)

        var raw = Tally()
        for _ in 0..<Self.rawInputCount {
            let input = RawMutator.mutate(original, headerEnd: headerEnd, generator: &generator)
            try check(input, model: model, tally: &raw, original: original)
        }
        var resigned = Tally()
        for _ in 0..<max(1, Self.rawInputCount / 3) {
            let edited = ContentsMutator.mutate(contents, generator: &generator)
            try check(CheckpointSamples.resigned(edited), model: model, tally: &resigned)
        }

        let growth = Self.peakResidentBytes() - peakBefore
        print("checkpoint fuzzing with seed \(Self.seed): raw mutations: \(raw); re-signed edits: \(resigned); peak memory grew by \(growth / 1_000_000) MB")
        #expect(raw.rejected > raw.loaded * 10, "too many raw mutations loaded: \(raw)")
        #expect(resigned.rejected > 0)
        // Inputs take milliseconds. The bound leaves room for a loaded machine that deschedules
        // the test, and the time limit above catches a hang.
        #expect(raw.slowest < 10, "a raw mutation took seconds: \(raw)")
        #expect(resigned.slowest < 10, "a re-signed edit took seconds: \(resigned)")
        // The inputs are under 30 kB, while a size taken from a damaged header would run to
        // gigabytes or more. The bound is loose because tests running in parallel share the process.
        #expect(growth < 1_000_000_000, "peak resident memory grew by \(growth) bytes")
    }

    /// Loads one input; if it loads, also checks it against a network and copies it in. With
    /// `original`, an input that loads must hold the same checkpoint, because byte damage that
    /// the checks let through may only touch what carries no content, such as header padding.
    private func check(_ input: [UInt8], model: ResNet, tally: inout Tally, original: [UInt8]? = nil) throws {
        let name = CheckpointSamples.name
        let start = Date()
        defer { tally.slowest = max(tally.slowest, Date().timeIntervalSince(start)) }
        do {
            let checkpoint = try Checkpoint.parse(input, name: name)
            var target = model
            if checkpoint.configuration.model != model.configuration {
                // Bounded by the shapes `parse` checked against the file.
                target = try ResNet(checkpoint.configuration.model)
            }
            try checkpoint.checkResumable(into: target, stepsPerEpoch: 2, path: name)
            try target.load(checkpoint.modelState, from: name)
            if let original {
                #expect(try checkpoint.serialized() == original, "damaged bytes loaded as a different checkpoint")
            }
            tally.loaded += 1
        } catch let error as SafetensorsError {
            #expect(error.description.hasPrefix("safetensors file \(name) "), "\(error.description)")
            tally.rejected += 1
        } catch let error as CheckpointError {
            #expect(error.path == name)
            tally.rejected += 1
        }
    }

    /// Returns the process's peak resident set size in bytes.
    static func peakResidentBytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024  // kilobytes on Linux
    }
}

extension CLIRandom {
    mutating func next(below bound: Int) -> Int {
        Int(next() % UInt64(max(bound, 1)))
    }

    mutating func pick<T>(_ values: [T]) -> T {
        values[next(below: values.count)]
    }
}

/// Byte-level damage, weighted toward the header, where the parser has the most branches.
enum RawMutator {
    static let interestingBytes: [UInt8] = Array("0123456789{}[]\",:- ".utf8) + [0x00, 0x7F, 0x80, 0xFF]

    static func mutate(_ bytes: [UInt8], headerEnd: Int, generator: inout CLIRandom) -> [UInt8] {
        var output = bytes
        let rounds = 1 + generator.next(below: 3)
        for _ in 0..<rounds {
            guard !output.isEmpty else { break }
            let inHeader = generator.next(below: 10) < 7 && headerEnd <= output.count
            let position = inHeader ? generator.next(below: headerEnd) : generator.next(below: output.count)
            switch generator.next(below: 8) {
            case 0:
                output[position] ^= UInt8(1) << UInt8(generator.next(below: 8))
            case 1:
                output[position] = generator.pick(interestingBytes)
            case 2:
                output = Array(output.prefix(generator.next(below: output.count)))
            case 3:
                let length = UInt64(headerEnd - 8)
                let declared: UInt64 = generator.pick([0, 1, 7, length - 1, length + 1, length + 8, length * 2,
                                                       UInt64(output.count), 1 << 40, UInt64(Int64.max) + 1,
                                                       UInt64.max, generator.next() % UInt64(output.count + 1)])
                for index in 0..<min(8, output.count) {
                    output[index] = UInt8(truncatingIfNeeded: declared >> (8 * UInt64(index)))
                }
            case 4:
                let end = min(output.count, position + 1 + generator.next(below: 16))
                output.removeSubrange(position..<end)
            case 5:
                let length = 1 + generator.next(below: 16)
                let start = generator.next(below: max(1, min(headerEnd, output.count) - length))
                output.insert(contentsOf: output[start..<min(output.count, start + length)], at: position)
            case 6:
                let other = generator.next(below: min(headerEnd, output.count))
                output.swapAt(position, other)
            default:
                if (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(output[position]) {
                    output[position] = UInt8(ascii: "0") + UInt8(generator.next(below: 10))
                } else {
                    output[position] = UInt8(truncatingIfNeeded: generator.next())
                }
            }
        }
        return output
    }
}

/// Edits of the parsed contents that keep the file well formed, so they reach the checks
/// behind the checksum once re-signed.
enum ContentsMutator {
    static let oddTexts = ["", "-1", "0", "1", "3", "7", "1e309", "nan", "inf", "-0.0", "99999999999999999999",
                           "[]", "{}", "[\"a\"]", "null", "\u{0}", "é"]
    static var oddNumbers: [Any] { [-1, 0, 1, 2, 3, 1_000_000_000, Int.max, -0.5, 0.5, 1e300, "x", NSNull(), true] }
    static let configurationKeys = ["epochs", "batchSize", "learningRate", "sgdMomentum", "weightDecay", "schedule",
                                     "negativeCount", "temperature", "bankMomentum", "seed", "limitPerClass",
                                     "testLimitPerClass", "neighborCount", "imageSize", "model"]
    static let modelKeys = ["architecture", "stem", "width", "featureDimension"]

    static func mutate(_ contents: SafetensorsContents, generator: inout CLIRandom) -> SafetensorsContents {
        var edited = contents
        switch generator.next(below: 7) {
        case 0:
            let key = generator.pick(edited.metadata.keys.sorted().filter { $0 != Checkpoint.checksumKey })
            edited.metadata[key] = generator.pick(oddTexts)
        case 1:
            editConfiguration(&edited, generator: &generator)
        case 2:
            let name = generator.pick(edited.order)
            edited.tensors[name] = nil
            edited.order.removeAll { $0 == name }
        case 3:
            let name = generator.pick(edited.order)
            let newName = generator.pick(["model.x", "memory_bank", "rng.cpu", "optimizer.momentum.fc.weight",
                                          generator.pick(edited.order)])
            guard newName != name, var tensor = edited.tensors[name] else { break }
            edited.tensors[newName] = nil
            edited.order.removeAll { $0 == newName }
            tensor.name = newName
            edited.tensors[name] = nil
            edited.tensors[newName] = tensor
            edited.order[edited.order.firstIndex(of: name)!] = newName
        case 4:
            reshape(&edited, generator: &generator)
        case 5:
            let name = generator.pick(edited.order)
            guard var tensor = edited.tensors[name] else { break }
            // Same element size, other meaning.
            let swaps: [SafetensorsDType: SafetensorsDType] = [.f32: .i32, .i32: .f32, .u8: .i8, .i64: .f64, .f64: .i64]
            tensor.dtype = swaps[tensor.dtype] ?? .u8
            if tensor.dtype == .u8 {
                tensor.shape = [tensor.bytes.count]
            }
            edited.tensors[name] = tensor
        default:
            let name = generator.pick(edited.order)
            edited.tensors[name] = SafetensorsTensor(name: name, dtype: .f32, shape: [0], bytes: [])
        }
        return edited
    }

    private static func editConfiguration(_ contents: inout SafetensorsContents, generator: inout CLIRandom) {
        guard let text = contents.metadata["configuration"],
              var object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            return
        }
        let key = generator.pick(configurationKeys)
        if key == "model", var model = object["model"] as? [String: Any] {
            let modelKey = generator.pick(modelKeys)
            model[modelKey] = generator.pick(oddNumbers + ["resnet34", "resnet50", "imagenet", "cifar"] as [Any])
            object["model"] = model
        } else {
            object[key] = generator.pick(oddNumbers)
        }
        if let data = try? JSONSerialization.data(withJSONObject: object) {
            contents.metadata["configuration"] = String(decoding: data, as: UTF8.self)
        }
    }

    /// Gives a tensor another shape with the same number of elements, or a different one
    /// with its bytes cut or repeated to match.
    private static func reshape(_ contents: inout SafetensorsContents, generator: inout CLIRandom) {
        let name = generator.pick(contents.order)
        guard var tensor = contents.tensors[name] else { return }
        let count = tensor.elementCount
        switch generator.next(below: 3) {
        case 0:
            tensor.shape = [count]
        case 1:
            tensor.shape = [1] + tensor.shape.reversed()
        default:
            let rows = 1 + generator.next(below: 8)
            tensor.shape = [rows] + Array(tensor.shape.dropFirst())
            let rowBytes = tensor.shape.dropFirst().reduce(tensor.dtype.byteSize, *)
            let needed = rows * rowBytes
            var bytes = tensor.bytes
            while bytes.count < needed, !tensor.bytes.isEmpty {
                bytes += tensor.bytes
            }
            tensor.bytes = Array(bytes.prefix(needed))
            if tensor.bytes.count != needed {
                return
            }
        }
        contents.tensors[name] = tensor
    }
}
