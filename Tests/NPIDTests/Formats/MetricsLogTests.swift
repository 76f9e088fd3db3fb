import Testing
@testable import NPID

@Suite struct MetricsLogTests {
    let records = [
        EpochMetrics(epoch: 1, loss: 9.5, lr: 0.03, imagesPerSecond: 812.25, knnTop1: nil, knnTop5: nil, seconds: 61.5),
        EpochMetrics(epoch: 2, loss: 8.75, lr: 0.03, imagesPerSecond: 820, knnTop1: 41.25, knnTop5: 75, seconds: 60),
        EpochMetrics(epoch: 3, loss: 8.0, lr: 0.003, imagesPerSecond: 815.5, knnTop1: 50, knnTop5: nil, seconds: 59.25),
    ]

    @Test func lineTextIsExact() {
        #expect(records[1].jsonLine()
                == #"{"epoch":2,"loss":8.75,"lr":0.03,"images_per_s":820.0,"knn_top1":41.25,"knn_top5":75.0,"seconds":60.0}"#)
        #expect(records[0].jsonLine()
                == #"{"epoch":1,"loss":9.5,"lr":0.03,"images_per_s":812.25,"knn_top1":null,"knn_top5":null,"seconds":61.5}"#)

        let diverged = EpochMetrics(epoch: 4, loss: .nan, lr: 1e-05, imagesPerSecond: .infinity, seconds: 1)
        #expect(diverged.jsonLine()
                == #"{"epoch":4,"loss":"NaN","lr":1e-05,"images_per_s":"Infinity","knn_top1":null,"knn_top5":null,"seconds":1.0}"#)
    }

    @Test func appendThenReadRoundTrips() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        let log = MetricsLog(path: folder + "/metrics.jsonl")

        for record in records {
            try log.append(record)
        }

        #expect(try log.read() == records)
        let text = String(decoding: FormatsTestFiles.readBytes(log.path) ?? [], as: UTF8.self)
        #expect(text == records.map { $0.jsonLine() + "\n" }.joined())
    }

    @Test(arguments: [#""loss":NaN"#, #""loss":-Infinity"#, #""loss":1e999"#])
    func bareNonFiniteValueIsNamed(field: String) throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        let log = MetricsLog(path: folder + "/metrics.jsonl")
        let line = #"{"epoch":1,"# + field + #","lr":0.03,"images_per_s":800.0,"knn_top1":null,"knn_top5":null,"seconds":60.0}"#
        try AtomicFile.write(Array((line + "\n").utf8), to: log.path)

        let error = #expect(throws: MetricsLogError.self) { try log.read() }
        #expect(error?.line == 1)
        #expect(error?.problem == "is not a valid epoch record: a value is not a finite number, and npid train records only finite numbers")
    }

    @Test func windowsLineEndingsAreRead() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        let log = MetricsLog(path: folder + "/metrics.jsonl")
        let text = records.map { $0.jsonLine() + "\r\n" }.joined()
        try AtomicFile.write(Array(text.utf8), to: log.path)

        #expect(try log.read() == records)
    }

    @Test func nonFiniteValueIsRejected() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        let log = MetricsLog(path: folder + "/metrics.jsonl")
        let cases: [(EpochMetrics, String)] = [
            (EpochMetrics(epoch: 2, loss: .nan, lr: 0.1, imagesPerSecond: 5, seconds: 1), #""loss": "NaN""#),
            (EpochMetrics(epoch: 2, loss: 1, lr: 0.1, imagesPerSecond: -.infinity, seconds: 1), #""images_per_s": "-Infinity""#),
            (EpochMetrics(epoch: 2, loss: 1, lr: 0.1, imagesPerSecond: 5, knnTop5: .infinity, seconds: 1), #""knn_top5": "Infinity""#),
        ]
        for (record, value) in cases {
            FormatsTestFiles.writeBytes(Array((records[0].jsonLine() + "\n" + record.jsonLine() + "\n").utf8), to: log.path)

            let error = #expect(throws: MetricsLogError.self) {
                try log.read()
            }
            #expect(error?.line == 2)
            #expect(error?.description == "metrics log \(log.path) line 2 has \(value), but npid train records only finite numbers; correct that line, or delete it and the lines after it")
        }
        // The line itself still decodes, so the message can name the value.
        #expect(MetricsLog.decode(cases[0].0.jsonLine())?.loss.isNaN == true)
    }

    @Test func epochOutOfSequenceIsRejected() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        let log = MetricsLog(path: folder + "/metrics.jsonl")
        func line(_ epoch: Int) -> String {
            EpochMetrics(epoch: epoch, loss: 1, lr: 0.1, imagesPerSecond: 5, seconds: 1).jsonLine()
        }
        // Each case: the lines, with "" for a blank one, then the line number and the problem expected.
        let cases: [([String], Int, String)] = [
            ([line(1), line(2), line(3), line(2)], 4, "repeats epoch 2 where epoch 4 was expected"),
            ([line(1), line(3), line(2)], 2, "records epoch 3 where epoch 2 was expected"),
            ([line(1), line(2), line(30)], 3, "records epoch 30 where epoch 3 was expected"),
            ([line(0)], 1, "records epoch 0, but epochs count from 1"),
            ([line(1), "", line(1)], 3, "repeats epoch 1 where epoch 2 was expected"),
        ]
        for (lines, number, problem) in cases {
            FormatsTestFiles.writeBytes(Array(lines.map { $0 + "\n" }.joined().utf8), to: log.path)

            let error = #expect(throws: MetricsLogError.self) {
                try log.read()
            }
            #expect(error?.line == number)
            #expect(error?.description == "metrics log \(log.path) line \(number) \(problem); correct that line, or delete it and the lines after it")
        }
    }

    @Test func logMayStartAfterEpochOne() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        let log = MetricsLog(path: folder + "/metrics.jsonl")
        // A run resumed from a checkpoint into another --run-dir records its epochs from there on.
        for record in records[1...] {
            try log.append(record)
        }

        #expect(try log.read(configuredEpochs: 3) == Array(records[1...]))
    }

    @Test func configuredEpochsBoundTheLog() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        let log = MetricsLog(path: folder + "/metrics.jsonl")
        for record in records {
            try log.append(record)
        }

        #expect(try log.read(configuredEpochs: 3) == records)
        let error = #expect(throws: MetricsLogError.self) {
            try log.read(configuredEpochs: 2)
        }
        #expect(error?.description == "metrics log \(log.path) line 3 records epoch 3, but the run is configured for 2 epochs; correct that line, or delete it and the lines after it")
    }

    @Test func truncateRejectsRepeatedEpoch() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        let log = MetricsLog(path: folder + "/metrics.jsonl")
        let text = (records + [records[1]]).map { $0.jsonLine() + "\n" }.joined()
        FormatsTestFiles.writeBytes(Array(text.utf8), to: log.path)

        // Keeping epochs <= 3 would keep the repeated epoch 2 as well.
        let error = #expect(throws: MetricsLogError.self) {
            try log.truncate(afterEpoch: 3)
        }
        #expect(error?.line == 4)
        #expect(FormatsTestFiles.readBytes(log.path) == Array(text.utf8))
    }

    @Test func truncateKeepsEarlierEpochs() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        let log = MetricsLog(path: folder + "/metrics.jsonl")
        for record in records {
            try log.append(record)
        }

        try log.truncate(afterEpoch: 2)
        #expect(try log.read() == Array(records[0..<2]))

        try log.append(records[2])
        #expect(try log.read() == records)

        try log.truncate(afterEpoch: 0)
        #expect(try log.read() == [])
        #expect(FormatsTestFiles.list(folder) == ["metrics.jsonl"])
    }

    @Test func truncateMissingFileDoesNothing() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }

        try MetricsLog(path: folder + "/metrics.jsonl").truncate(afterEpoch: 3)

        #expect(FormatsTestFiles.list(folder) == [])
    }

    @Test func malformedLineNamesFileAndLine() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        let path = folder + "/metrics.jsonl"
        let cases: [(String, String)] = [
            ("not json", "the line is not a JSON object"),
            (#"{"epoch":3,"lr":0.1,"images_per_s":1,"seconds":1}"#, #"missing key "loss""#),
            (#"{"epoch":"three","loss":1,"lr":0.1,"images_per_s":1,"seconds":1}"#, #""epoch" is not a valid integer"#),
            (#"{"epoch":3,"loss":null,"lr":0.1,"images_per_s":1,"seconds":1}"#, #""loss" is not a valid number"#),
        ]
        for (bad, reason) in cases {
            FormatsTestFiles.writeBytes(Array((records[0].jsonLine() + "\n\n" + bad + "\n" + records[1].jsonLine() + "\n").utf8), to: path)

            let error = #expect(throws: MetricsLogError.self) {
                try MetricsLog(path: path).read()
            }
            #expect(error?.line == 3)
            #expect(error?.description == "metrics log \(path) line 3 is not a valid epoch record: \(reason); correct that line, or delete it and the lines after it")
        }
    }

    @Test func interruptedAppendIsRepaired() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        let log = MetricsLog(path: folder + "/metrics.jsonl")
        let torn = String(records[1].jsonLine().prefix(30))
        FormatsTestFiles.writeBytes(Array((records[0].jsonLine() + "\n" + torn).utf8), to: log.path)

        #expect(try log.read() == [records[0]])

        try log.append(records[1])
        #expect(try log.read() == Array(records[0..<2]))
    }

    @Test func unterminatedCompleteLineIsKept() throws {
        let folder = FormatsTestFiles.makeFolder()
        defer { FormatsTestFiles.removeFolder(folder) }
        let log = MetricsLog(path: folder + "/metrics.jsonl")
        FormatsTestFiles.writeBytes(Array(records[0].jsonLine().utf8), to: log.path)

        #expect(try log.read() == [records[0]])

        try log.append(records[1])
        #expect(try log.read() == Array(records[0..<2]))
    }

    @Test func readingMissingFileThrows() {
        let error = #expect(throws: FileIOError.self) {
            try MetricsLog(path: "/nonexistent-npid/metrics.jsonl").read()
        }
        #expect(error?.description.hasPrefix("failed to open /nonexistent-npid/metrics.jsonl: No such file or directory") == true)
    }

    @Test func codableUsesSnakeCaseKeys() throws {
        let decoded = try #require(MetricsLog.decode(
            #"{"seconds":2.5,"knn_top5":90,"knn_top1":70,"images_per_s":100,"lr":0.5,"loss":4,"epoch":7}"#))
        #expect(decoded == EpochMetrics(epoch: 7, loss: 4, lr: 0.5, imagesPerSecond: 100, knnTop1: 70, knnTop5: 90, seconds: 2.5))
    }
}
