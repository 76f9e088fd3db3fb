import Testing
@testable import Torch

/// A private CPU generator: its draws depend on its seed and state alone.
@Suite struct GeneratorTests {
    @Test func sameSeedGivesSameDraws() throws {
        let first = try Generator(seed: 11)
        let second = try Generator(seed: 11)

        let uniformA = try Tensor.rand([3, 4], generator: first).toArray(of: Float.self)
        let uniformB = try Tensor.rand([3, 4], generator: second).toArray(of: Float.self)
        let integersA = try Tensor.randint(0, 1000, [20], generator: first).toArray(of: Int64.self)
        let integersB = try Tensor.randint(0, 1000, [20], generator: second).toArray(of: Int64.self)

        #expect(uniformA == uniformB)
        #expect(integersA == integersB)
    }

    @Test func otherSeedGivesOtherDraws() throws {
        let first = try Tensor.rand([16], generator: Generator(seed: 1)).toArray(of: Float.self)
        let second = try Tensor.rand([16], generator: Generator(seed: 2)).toArray(of: Float.self)

        #expect(first != second)
    }

    @Test func defaultGeneratorDrawsDoNotInterfere() throws {
        let expected = try Tensor.randint(0, 50, [32], generator: Generator(seed: 5)).toArray(of: Int64.self)
        let generator = try Generator(seed: 5)

        _ = try Tensor.rand([64])
        _ = try Tensor.randint(0, 50, [32])
        let actual = try Tensor.randint(0, 50, [32], generator: generator).toArray(of: Int64.self)

        #expect(actual == expected)
    }

    @Test func savedStateRepeatsDraws() throws {
        let generator = try Generator(seed: 9)
        _ = try Tensor.rand([7], generator: generator)
        let saved = try generator.state()
        let first = try Tensor.randint(0, 100, [12], generator: generator).toArray(of: Int64.self)

        try generator.setState(saved)
        let second = try Tensor.randint(0, 100, [12], generator: generator).toArray(of: Int64.self)

        #expect(first == second)
        #expect(saved.dtype == .uint8)
    }

    @Test func defaultGeneratorStateLoads() throws {
        // Checkpoints written before runs had their own generator saved the default one's state.
        let defaultState = try Torch.cpuRandomState()
        let generator = try Generator(seed: 0)

        try generator.setState(defaultState)

        #expect(try generator.state().toArray(of: UInt8.self) == defaultState.toArray(of: UInt8.self))
    }

    @Test func drawsStayInRange() throws {
        let generator = try Generator(seed: 3)

        let integers = try Tensor.randint(4, 9, [400], generator: generator).toArray(of: Int64.self)
        let uniform = try Tensor.rand([400], dtype: .float64, generator: generator).toArray(of: Double.self)

        #expect(Set(integers) == Set(4...8))
        #expect(uniform.allSatisfy { $0 >= 0 })
        #expect(uniform.allSatisfy { $0 < 1 })
        #expect(uniform.contains { $0 < 0.1 })
        #expect(uniform.contains { $0 > 0.9 })
    }
}
