import Testing
@testable import NPID

@Suite struct ProgressLineTests {
    @Test func lineFitsWidthWithBar() {
        let line = ProgressLine.render(epoch: 3, epochs: 200, step: 120, steps: 391, loss: 8.12345,
                                       imagesPerSecond: 74.24, elapsed: 60, width: 80)

        // 60 s for 120 steps leaves 271 steps at 0.5 s each, 135.5 s in all, shown as 2m16s.
        // The 26-column bar fills floor(120 · 26 / 391) = 7 columns.
        #expect(line == "epoch 3/200 [#######...................] 120/391 loss 8.123 74.2 img/s ETA 2m16s")
        #expect(line.count == 80)
    }

    @Test func barIsCappedOnWideTerminals() {
        let line = ProgressLine.render(epoch: 1, epochs: 2, step: 5, steps: 10, loss: 1, imagesPerSecond: 10,
                                       elapsed: 5, width: 200)

        #expect(line == "epoch 1/2 [###############...............]  5/10 loss 1.000 10.0 img/s ETA 5s")
    }

    @Test func barShrinksThenDisappears() {
        let arguments = (epoch: 3, epochs: 200, step: 120, steps: 391)
        func render(_ width: Int) -> String {
            ProgressLine.render(epoch: arguments.epoch, epochs: arguments.epochs, step: arguments.step,
                                steps: arguments.steps, loss: 8.123, imagesPerSecond: 74.2, elapsed: 60, width: width)
        }

        #expect(render(63) == "epoch 3/200 [##.......] 120/391 loss 8.123 74.2 img/s ETA 2m16s")
        #expect(render(59) == "epoch 3/200 [#....] 120/391 loss 8.123 74.2 img/s ETA 2m16s")
        #expect(render(58) == "epoch 3/200 120/391 loss 8.123 74.2 img/s ETA 2m16s")
        #expect(render(45) == "epoch 3/200 120/391 loss 8.123 ETA 2m16s")
        #expect(render(20) == "epoch 3/200 120/391 ")
        #expect(render(0) == "")
        for width in 0...100 {
            #expect(render(width).count <= width, "width \(width)")
        }
    }

    @Test func startAndEndOfEpoch() {
        let start = ProgressLine.render(epoch: 1, epochs: 1, step: 0, steps: 4, loss: .nan, imagesPerSecond: 0,
                                        elapsed: 0, width: 60)
        #expect(start == "epoch 1/1 [..................] 0/4 loss nan 0.0 img/s ETA --")

        let end = ProgressLine.render(epoch: 1, epochs: 1, step: 4, steps: 4, loss: 2, imagesPerSecond: 1,
                                      elapsed: 9, width: 60)
        #expect(end == "epoch 1/1 [################] 4/4 loss 2.000 1.0 img/s ETA 0s")
    }

    @Test func durationFormats() {
        let cases: [(Double, String)] = [
            (0, "0s"), (0.4, "0s"), (45, "45s"), (59.4, "59s"), (59.6, "1m00s"), (192, "3m12s"),
            (3599, "59m59s"), (3600, "1h00m"), (7500, "2h05m"), (7559, "2h05m"), (360_000, "100h00m"),
            (-1, "--"), (.nan, "--"), (.infinity, "--"), (1e300, "--"),
        ]
        for (seconds, expected) in cases {
            #expect(ProgressLine.formatDuration(seconds) == expected, "\(seconds) s")
        }
    }

    @Test func epochSummaryWithAccuracy() {
        let line = ProgressLine.epochSummary(epoch: 3, epochs: 200, loss: 8.12345, lr: 0.03, imagesPerSecond: 74.24,
                                             knnTop1: 45.123, knnTop5: 80, seconds: 312)
        #expect(line == "epoch 3/200 loss 8.1235 lr 0.03 74.2 img/s kNN top-1 45.12% top-5 80.00% time 5m12s")
    }

    @Test func epochSummaryWithoutAccuracy() {
        let line = ProgressLine.epochSummary(epoch: 10, epochs: 10, loss: 5, lr: 3e-5, imagesPerSecond: 1000,
                                             seconds: 7500)
        #expect(line == "epoch 10/10 loss 5.0000 lr 3e-05 1000.0 img/s time 2h05m")

        let topOneOnly = EpochMetrics(epoch: 1, loss: 1, lr: 0.1, imagesPerSecond: 2, knnTop1: 50, seconds: 3)
        #expect(ProgressLine.epochSummary(topOneOnly, epochs: 5)
                == "epoch 1/5 loss 1.0000 lr 0.1 2.0 img/s kNN top-1 50.00% time 3s")
        #expect(ProgressLine.epochSummary(topOneOnly) == "epoch 1 loss 1.0000 lr 0.1 2.0 img/s kNN top-1 50.00% time 3s")
    }
}
