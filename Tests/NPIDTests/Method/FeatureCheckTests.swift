import Testing
@testable import NPID
import Torch

/// The check that stops NaN, infinite or zero-length features before any evaluation uses them.
@Suite struct FeatureCheckTests {
    @Test(arguments: [FeatureLayer.embedding, .pooled])
    func usableRowsPass(layer: FeatureLayer) throws {
        let rows = try Tensor([Float(0.6), 0.8, 0, 1, -1, 0], shape: [3, 2])

        try checkUsable(rows, layer: layer)
    }

    @Test(arguments: [Float.nan, .infinity, -.infinity])
    func nonFiniteRowIsRejected(value: Float) throws {
        let rows = try Tensor([Float(0.6), 0.8, value, 0], shape: [2, 2])

        #expect(throws: UnusableFeaturesError.self) { try checkUsable(rows, layer: .embedding) }
        #expect(throws: UnusableFeaturesError.self) { try checkUsable(rows, layer: .pooled) }
    }

    @Test func zeroEmbeddingIsRejected() throws {
        // An embedding whose norm overflowed comes out of the normalisation as zeros.
        let rows = try Tensor([Float(0.6), 0.8, 0, 0], shape: [2, 2])

        #expect(throws: UnusableFeaturesError.self) { try checkUsable(rows, layer: .embedding) }
        try checkUsable(rows, layer: .pooled)
    }

    @Test func shortEmbeddingIsRejected() throws {
        let rows = try Tensor([Float(0.3), 0.3], shape: [1, 2])

        #expect(throws: UnusableFeaturesError.self) { try checkUsable(rows, layer: .embedding) }
    }
}
