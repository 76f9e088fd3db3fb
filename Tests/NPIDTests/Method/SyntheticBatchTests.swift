import Foundation
import Testing
@testable import NPID
import Torch

/// The random batches that `npid bench --train --synthetic` times.
@Suite struct SyntheticBatchTests {
    @Test func batchesAreFullAndDistinct() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let configuration = TinyRun.configuration()
        let trainer = try Trainer(configuration: configuration, runtime: TinyRun.runtime,
                                  data: TinyRun.data(trainCount: 10), runDirectory: folder.path)

        let batches = trainer.syntheticBatches(count: 3)

        #expect(batches.count == 3)
        for batch in batches {
            #expect(batch.count == configuration.batchSize)
            #expect(Set(batch.indices).count == batch.count, "indices \(batch.indices)")
            #expect(batch.indices.allSatisfy { (0..<10).contains($0) })
            #expect(batch.labels == batch.indices.map { trainer.data.train.labels[$0] })
            #expect(batch.pixels.count == batch.count * 3 * configuration.imageSize * configuration.imageSize)
            #expect(batch.pixels.allSatisfy { $0 >= 0 })
            #expect(batch.pixels.allSatisfy { $0 <= 1 })
        }
        #expect(batches[0].pixels != batches[1].pixels)
    }

    @Test func syntheticStepsUpdateTheBank() throws {
        let folder = try MethodTestFolder.make()
        defer { MethodTestFolder.remove(folder) }
        let trainer = try Trainer(configuration: TinyRun.configuration(), runtime: TinyRun.runtime,
                                  data: TinyRun.data(trainCount: 10), runDirectory: folder.path)
        let before = try trainer.memoryBank.features.clone().toArray(of: Float.self)

        let measured = try trainer.measureSyntheticThroughput(steps: 1, warmup: 0)

        #expect(measured.images == 4)
        #expect(measured.imagesPerSecond > 0)
        // One step of batch 4 moves exactly the 4 bank rows of the first synthetic batch.
        let after = try trainer.memoryBank.features.toArray(of: Float.self)
        let dimension = trainer.configuration.model.featureDimension
        let moved = (0..<10).filter { row in
            (0..<dimension).contains { after[row * dimension + $0] != before[row * dimension + $0] }
        }
        #expect(moved == trainer.syntheticBatches(count: 1)[0].indices.sorted())
    }
}
