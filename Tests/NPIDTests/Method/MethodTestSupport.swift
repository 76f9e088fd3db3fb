import Foundation
import Torch

/// Reference arithmetic for the method tests: plain Swift `Double` loops written from the
/// formulas, so that expected values never come from the code under test.
enum MethodReference {
    /// Returns deterministic, irregular values `sin(phase + step · i)` for building explicit inputs.
    static func waves(count: Int, phase: Double, step: Double = 1.3) -> [Double] {
        (0..<count).map { sin(phase + step * Double($0)) }
    }

    /// Scales every row of row-major [rows, columns] values to unit L2 norm.
    static func unitRows(_ values: [Double], columns: Int) -> [Double] {
        var result = values
        for start in stride(from: 0, to: values.count, by: columns) {
            let row = values[start..<(start + columns)]
            let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for j in 0..<columns {
                result[start + j] = values[start + j] / norm
            }
        }
        return result
    }

    /// Returns row `index` of row-major values with `columns` columns.
    static func row(_ values: [Double], _ index: Int, columns: Int) -> [Double] {
        Array(values[(index * columns)..<((index + 1) * columns)])
    }

    static func dot(_ a: [Double], _ b: [Double]) -> Double {
        zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
    }

    static func norm(_ a: [Double]) -> Double {
        dot(a, a).squareRoot()
    }

    /// Tests |actual − expected| ≤ tolerance · max(1, |expected|).
    static func isClose(_ actual: Double, _ expected: Double, relative tolerance: Double) -> Bool {
        abs(actual - expected) <= tolerance * max(1, abs(expected))
    }

    /// Estimates the gradient of `function` at `point` by central finite differences,
    /// one coordinate at a time.
    static func numericalGradient(of function: ([Double]) throws -> Double, at point: [Double],
                                  step: Double = 1e-6) rethrows -> [Double] {
        var gradient: [Double] = []
        for i in point.indices {
            var forward = point
            var backward = point
            forward[i] += step
            backward[i] -= step
            gradient.append((try function(forward) - function(backward)) / (2 * step))
        }
        return gradient
    }
}

/// Temporary folders for tests that write files.
enum MethodTestFolder {
    /// Creates a new empty folder under the system temporary directory.
    static func make() throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("npid-method-test-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func remove(_ url: URL) {
        try? FileManager.default.removeItem(at: url)
    }
}

/// Tensor construction and readback for the method tests. Kept in one namespace so the
/// names cannot collide with helpers that other test folders define.
enum MethodTensors {
    /// Creates a float64 CPU tensor, for the tests that need more precision than float32 gives.
    static func double(_ values: [Double], shape: [Int]) throws -> Tensor {
        try Tensor(values, shape: shape)
    }

    /// Creates a float32 CPU tensor from `Double` values.
    static func float(_ values: [Double], shape: [Int]) throws -> Tensor {
        try Tensor(values.map { Float($0) }, shape: shape)
    }

    /// Creates an int64 CPU tensor from `Int` values.
    static func indices(_ values: [Int], shape: [Int]? = nil) throws -> Tensor {
        try Tensor(values.map { Int64($0) }, shape: shape ?? [values.count])
    }

    /// Copies the elements of a floating-point tensor out as `Double`, in row-major order.
    static func values(_ tensor: Tensor) throws -> [Double] {
        try tensor.to(dtype: .float64).toArray(of: Double.self)
    }
}
