import Foundation
import Synchronization

/// Mask of the signals the launcher has received and not yet passed on, bit n for signal n.
/// Written by the signal handler, so it has to be a lock-free atomic.
private let pendingSignals = Atomic<UInt64>(0)

/// SIGINT and SIGTERM handling for the `npid train --nproc` launcher: the launcher keeps
/// running and its watch loop sends each signal on to the workers.
enum ForwardedSignals {
    static let handled: [Int32] = [SIGINT, SIGTERM]

    /// Replaces the default action of SIGINT and SIGTERM with a handler that marks the signal
    /// pending.
    ///
    /// Every signal has to go through the launcher, a terminal's Ctrl-C included, because
    /// Foundation's `Process` (swift-corelibs-foundation, Swift 6.3) starts each worker in a
    /// process group of its own, outside the terminal's foreground group.
    static func install() {
        // The global's lazy initialisation must not first run inside the handler.
        _ = pendingSignals.load(ordering: .relaxed)
        for number in handled {
            var action = sigaction()
            action.__sigaction_handler.sa_sigaction = { number, _, _ in
                pendingSignals.bitwiseOr(UInt64(1) << UInt64(number), ordering: .relaxed)
            }
            action.sa_flags = SA_SIGINFO | SA_RESTART
            sigemptyset(&action.sa_mask)
            sigaction(number, &action, nil)
        }
    }

    /// Returns the signals received since the last call, in ascending order, and clears them.
    static func takePending() -> [Int32] {
        let mask = pendingSignals.exchange(0, ordering: .relaxed)
        return handled.sorted().filter { mask & (UInt64(1) << UInt64($0)) != 0 }
    }
}
