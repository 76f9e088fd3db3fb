import Testing
@testable import Torch

@Test func roundTripKeepsValuesAndShape() throws {
    let t = try Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
    #expect(t.shape == [2, 3])
    #expect(t.dtype == .float32)
    #expect(t.device == .cpu)
    #expect(try t.toArray(of: Float.self) == [1, 2, 3, 4, 5, 6])
    #expect(try t.t().contiguous().toArray(of: Float.self) == [1, 4, 2, 5, 3, 6])
}

@Test func libtorchErrorBecomesThrownError() throws {
    let a = try Tensor.zeros([2, 3])
    let b = try Tensor.zeros([4, 5])
    do {
        _ = try a.matmul(b)
        Issue.record("matmul of 2x3 by 4x5 did not throw")
    } catch let error as TorchError {
        #expect(error.message.contains("cannot be multiplied"))
        #expect(!error.message.contains("frame #"))
    }
}

@Test func wrongElementTypeIsRejected() throws {
    let t = try Tensor([1, 2] as [Int64])
    #expect(throws: TorchError.self) { try t.toArray(of: Float.self) }
}

@Test func shapeMismatchIsRejected() {
    #expect(throws: TorchError.self) { try Tensor([1, 2, 3] as [Float], shape: [2, 2]) }
}

@Test func matmulMatchesHandComputedProduct() throws {
    let a = try Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
    let b = try Tensor([7, 8, 9, 10, 11, 12] as [Float], shape: [3, 2])
    #expect(try a.matmul(b).toArray(of: Float.self) == [58, 64, 139, 154])
}

@Test func backwardGivesAnalyticGradient() throws {
    let x = try Tensor([1, -2, 3] as [Double]).requiringGrad()
    let y = try (x * x).sum()                  // dy/dx = 2x
    try y.backward()
    #expect(try x.grad?.toArray(of: Double.self) == [2, -4, 6])
    try x.clearGrad()
    #expect(try x.grad == nil)
}

@Test func noGradScopeRestoresPreviousMode() throws {
    let x = try Tensor([1, 2] as [Float]).requiringGrad()
    let inside = try withNoGrad { try x * 2.0 }
    #expect(!inside.requiresGrad)
    let outside = try x * 2.0
    #expect(outside.requiresGrad)
}

@Test func noGradScopeRestoresModeAfterThrow() throws {
    let x = try Tensor([1, 2] as [Float]).requiringGrad()
    _ = try? withNoGrad { () throws -> Tensor in throw TorchError("stop") }
    #expect(try (x * 2.0).requiresGrad)
}

@Test func l2NormalizedRowsHaveUnitLength() throws {
    let t = try Tensor([3, 4, 0, 5] as [Float], shape: [2, 2]).l2Normalized(dim: 1)
    #expect(try t.toArray(of: Float.self) == [0.6, 0.8, 0, 1])
}

@Test func topkReturnsSortedValuesAndIndices() throws {
    let t = try Tensor([0.1, 0.9, 0.5, 0.7] as [Float], shape: [1, 4])
    let (values, indices) = try t.topk(2, dim: 1)
    #expect(try values.toArray(of: Float.self) == [0.9, 0.7])
    #expect(try indices.toArray(of: Int64.self) == [1, 3])
}

@Test func indexCopyWritesNamedRows() throws {
    let bank = try Tensor.zeros([4, 2])
    let rows = try Tensor([3, 1] as [Int64])
    try bank.indexCopy(dim: 0, index: rows, source: Tensor([1, 2, 3, 4] as [Float], shape: [2, 2]))
    #expect(try bank.toArray(of: Float.self) == [0, 0, 3, 4, 0, 0, 1, 2])
}

@Test func sgdStepFollowsPyTorchRule() throws {
    // p = 1, grad = 0.5, wd = 0.1, momentum 0.9, lr 0.1.
    // step 1: d = 0.5 + 0.1 = 0.6, buf = 0.6, p = 1 - 0.06 = 0.94
    // step 2 (same grad): d = 0.5 + 0.094 = 0.594, buf = 0.54 + 0.594 = 1.134, p = 0.94 - 0.1134
    let p = try Tensor([1] as [Double]).requiringGrad()
    var buffers: [Tensor?] = [nil]
    for _ in 0..<2 {
        try p.clearGrad()
        try (p * 0.5).sum().backward()
        try sgdStep(parameters: [p], momentumBuffers: &buffers, learningRate: 0.1, momentum: 0.9, weightDecay: 0.1)
    }
    let value = try p.toArray(of: Double.self)[0]
    #expect(abs(value - (0.94 - 0.1134)) < 1e-12)
}

@Test func cpuRandomStateRestoresSequence() throws {
    try Torch.manualSeed(7)
    let state = try Torch.cpuRandomState()
    let first = try Tensor.rand([5]).toArray(of: Float.self)
    try Torch.setCPURandomState(state)
    let again = try Tensor.rand([5]).toArray(of: Float.self)
    #expect(first == again)
}

@Test func cudaLoadEitherWorksOrThrows() {
    // On a machine without a GPU this must be a thrown error, never an abort.
    do {
        try Torch.loadCUDA()
        #expect(Torch.cudaDeviceCount > 0)
    } catch {
        #expect(!String(describing: error).isEmpty)
    }
}

@Test func autocastLowersMatmulAndRestores() throws {
    let a = try Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
    let inside = try withAutocast(device: .cpu, dtype: .bfloat16) { try a.matmul(a) }
    #expect(inside.dtype == .bfloat16)
    #expect(try inside.to(dtype: .float32).toArray(of: Float.self) == [7, 10, 15, 22])
    #expect(try a.matmul(a).dtype == .float32)
}
