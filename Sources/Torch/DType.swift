import CTorch

/// Element types of a tensor, as libtorch names them.
public enum DType: Int32, Sendable, CaseIterable {
    case float32 = 0
    case float64 = 1
    case int64 = 2
    case int32 = 3
    case uint8 = 4
    case bool = 5
    case bfloat16 = 6
    case float16 = 7

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .bfloat16, .float16: return 2
        case .uint8, .bool: return 1
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .float32, .float64, .bfloat16, .float16: return true
        default: return false
        }
    }
}

/// A Swift type that can be copied in and out of a tensor element by element.
public protocol TensorElement: Sendable {
    static var dtype: DType { get }
}

extension Float: TensorElement { public static var dtype: DType { .float32 } }
extension Double: TensorElement { public static var dtype: DType { .float64 } }
extension Int64: TensorElement { public static var dtype: DType { .int64 } }
extension Int32: TensorElement { public static var dtype: DType { .int32 } }
extension UInt8: TensorElement { public static var dtype: DType { .uint8 } }
extension Bool: TensorElement { public static var dtype: DType { .bool } }
