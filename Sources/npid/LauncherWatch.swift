import Dispatch
import Foundation

/// Stops a worker of `npid train --nproc` whose launcher has gone.
///
/// The launcher hosts the rendezvous store and is the only process that forwards a user's
/// signals, so a worker without it could neither be stopped nor report. When the launcher is
/// killed (SIGKILL, a crash), the worker's parent changes, and the worker then stops itself as
/// on SIGTERM: it finishes the step, rank 0 saves a checkpoint, and all exit with 143.
enum LauncherWatch {
    /// The environment variable in which the launcher passes its process id to the workers.
    static let environmentKey = "NPID_LAUNCHER_PID"

    /// Kept alive for the life of the process; a released timer stops firing.
    nonisolated(unsafe) private static var timer: (any DispatchSourceTimer)?

    /// Starts checking twice a second that the launcher named in `environment` is still this
    /// process's parent. Does nothing for a process that no npid launcher started.
    static func start(environment: [String: String], rank: Int) {
        guard let text = environment[environmentKey], let launcher = pid_t(text) else { return }
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now(), repeating: .milliseconds(500))
        timer.setEventHandler { [timer] in
            guard getppid() != launcher else { return }
            timer.cancel()
            // Every rank prints this, because with the launcher gone nothing else explains the stop.
            Console.logFromAnyRank("npid: rank \(rank): the launcher (pid \(launcher)) has exited; stopping as on SIGTERM")
            kill(getpid(), SIGTERM)
        }
        timer.resume()
        self.timer = timer
    }

    /// Stops checking. A rank that already stopped at another rank's request calls this, so
    /// that the launcher's exit during its shutdown does not start a second stop.
    static func stop() {
        timer?.cancel()
    }
}
