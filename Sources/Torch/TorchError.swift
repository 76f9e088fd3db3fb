import CTorch

/// An error raised inside libtorch, carrying libtorch's own message.
public struct TorchError: Error, CustomStringConvertible, Sendable {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// Throws the calling thread's pending libtorch error when `status` is non-zero.
///
/// The message is read on the same thread, right after the call, because the shim
/// keeps it in a thread-local slot.
@inline(__always)
func check(_ status: Int32) throws {
    if status != 0 {
        throw TorchError(String(cString: ct_last_error()))
    }
}
