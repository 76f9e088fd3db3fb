import Foundation
import Synchronization

/// Mask of the signals the launcher has received and not yet passed on, bit n for signal n.
private let pendingSignals = Atomic<UInt64>(0)

/// SIGINT, SIGTERM and SIGHUP handling for the `npid train --nproc` launcher: the launcher
/// keeps running and its watch loop sends each signal on to the workers.
enum ForwardedSignals {
    static let handled: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    /// Kept alive for the life of the process; a released source stops delivering.
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []

    /// Replaces the default action of the handled signals with marking the signal pending.
    /// SIGHUP stays ignored when the launcher started with it ignored, as under `nohup`.
    ///
    /// Every signal has to go through the launcher, a terminal's Ctrl-C included, because
    /// Foundation's `Process` (swift-corelibs-foundation, Swift 6.3) starts each worker in a
    /// process group of its own, outside the terminal's foreground group. A dispatch source,
    /// unlike a sigaction handler, also receives a signal that the launcher's parent left
    /// blocked in the inherited signal mask.
    static func install() {
        for number in handled {
            // The default action would end the process before the source's handler runs.
            let wasIgnored = StopSignals.ignore(number)
            if number == SIGHUP && wasIgnored {
                continue
            }
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                pendingSignals.bitwiseOr(UInt64(1) << UInt64(number), ordering: .relaxed)
            }
            source.resume()
            sources.append(source)
        }
    }

    /// Returns the signals received since the last call, in ascending order, and clears them.
    static func takePending() -> [Int32] {
        let mask = pendingSignals.exchange(0, ordering: .relaxed)
        return handled.sorted().filter { mask & (UInt64(1) << UInt64($0)) != 0 }
    }
}
