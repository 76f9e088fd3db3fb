import CTorch

/// The device that holds a tensor's storage.
public enum Device: Equatable, Hashable, Sendable, CustomStringConvertible {
    case cpu
    case cuda(Int)

    /// Parses `cpu`, `cuda` or `cuda:N`; returns nil for anything else.
    public init?(parsing text: String) {
        if text == "cpu" {
            self = .cpu
        } else if text == "cuda" {
            self = .cuda(0)
        } else if text.hasPrefix("cuda:"), let index = Int(text.dropFirst(5)), index >= 0 {
            self = .cuda(index)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .cpu: return "cpu"
        case .cuda(let index): return "cuda:\(index)"
        }
    }

    var code: (type: Int32, index: Int32) {
        switch self {
        case .cpu: return (Int32(CT_CPU), 0)
        case .cuda(let index): return (Int32(CT_CUDA), Int32(index))
        }
    }
}

/// Memory layout of a 4-d tensor.
public enum MemoryFormat: Int32, Sendable {
    case contiguous = 0
    /// NHWC strides with NCHW sizes: what oneDNN and cuDNN convolutions run fastest on.
    case channelsLast = 1
}
