import Dispatch
import Foundation
import NPID
import Synchronization

/// SIGINT, SIGTERM and SIGHUP handling for `npid train`.
///
/// Until `beginTraining()` a signal ends the process at once, because nothing needs saving
/// yet. After it, the first signal only sets a flag that the trainer polls between steps and
/// evaluations, so the run finishes its step or evaluation and saves a checkpoint. A second
/// signal exits at once without saving. The checkpoints already written stay intact, because
/// every save ends in an atomic rename. Either way the exit status is 128 + the signal number (130, 143 or 129).
///
/// SIGHUP arrives when the terminal closes. A process started with SIGHUP ignored, as
/// `nohup` starts it, keeps ignoring it.
final class StopSignals: @unchecked Sendable {
    static let handled: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    /// The first signal received, 0 before any.
    private let firstSignal = Atomic<Int32>(0)
    /// Whether the trainer is polling `stopRequested`.
    private let training = Atomic<Bool>(false)
    private let runDirectory: String
    /// Kept alive for the life of the process; a released source stops delivering.
    private var sources: [any DispatchSourceSignal] = []

    private init(runDirectory: String) {
        self.runDirectory = runDirectory
    }

    /// Replaces the default action of the handled signals with this handling.
    static func install(runDirectory: String) -> StopSignals {
        let signals = StopSignals(runDirectory: runDirectory)
        // One serial queue: on a concurrent one, the second signal's handler could exit the
        // process before the first one's message was written.
        let queue = DispatchQueue(label: "npid.stop-signals")
        for number in handled {
            // The default action would end the process before the handler runs.
            let wasIgnored = ignore(number)
            if number == SIGHUP && wasIgnored {
                continue
            }
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [signals] in
                signals.received(number, count: Int(source.data))
            }
            source.resume()
            signals.sources.append(source)
        }
        return signals
    }

    /// Makes the first signal from now on set the stop flag instead of ending the process.
    func beginTraining() {
        training.store(true, ordering: .sequentiallyConsistent)
    }

    var stopRequested: Bool {
        firstSignal.load(ordering: .relaxed) != 0
    }

    /// The first signal received, if any.
    var signalNumber: Int32? {
        let number = firstSignal.load(ordering: .relaxed)
        return number == 0 ? nil : number
    }

    /// Sets `number` to be ignored and returns whether it already was, as after `nohup`.
    static func ignore(_ number: Int32) -> Bool {
        let previous = signal(number, SIG_IGN)
        return unsafeBitCast(previous, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self)
    }

    static func name(of number: Int32) -> String {
        switch number {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        case SIGHUP: return "SIGHUP"
        default: return "signal \(number)"
        }
    }

    /// Handles `count` deliveries of `number`; libdispatch merges deliveries that arrive
    /// before its handler runs.
    private func received(_ number: Int32, count: Int) {
        let name = Self.name(of: number)
        guard training.load(ordering: .sequentiallyConsistent) else {
            Console.log("npid: stopped by \(name) before training started; no training step was taken")
            _exit(128 + number)
        }
        let (isFirst, first) = firstSignal.compareExchange(expected: 0, desired: number, ordering: .relaxed)
        if isFirst && count == 1 {
            Console.log("npid: \(name) received: finishing the current step or evaluation and saving a checkpoint; send any of SIGINT, SIGTERM or SIGHUP again to exit at once without saving")
            return
        }
        let repeated = isFirst || first == number ? "again" : "after \(Self.name(of: first))"
        // The newest checkpoint's name appears only when a save completes (an atomic rename).
        let checkpointState = FileManager.default.fileExists(atPath: runDirectory + "/" + Checkpoint.fileName)
            ? "the checkpoints in \(runDirectory) are as the last completed save left them"
            : "no checkpoint was written to \(runDirectory) yet, so start the run again"
        Console.log("npid: \(name) received \(repeated): exiting at once without saving; \(checkpointState)")
        _exit(128 + number)
    }
}
