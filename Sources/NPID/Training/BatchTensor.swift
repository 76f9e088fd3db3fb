import Torch

extension Batch {
    /// Copies the batch's pixels into a float tensor [B, 3, S, S] on `device`.
    ///
    /// With `channelsLast`, the tensor has NHWC strides (the sizes stay NCHW), which is
    /// what oneDNN and cuDNN convolutions run fastest on. An NHWC batch becomes such a
    /// tensor by a permuted view, without moving any pixel.
    public func imageTensor(device: Device, channelsLast: Bool) throws -> Tensor {
        var images: Tensor
        switch layout {
        case .nhwc:
            images = try Tensor(pixels, shape: [count, imageSize, imageSize, 3]).permuted([0, 3, 1, 2])
            if !channelsLast {
                images = try images.contiguous()
            }
        case .nchw:
            images = try Tensor(pixels, shape: [count, 3, imageSize, imageSize])
            if channelsLast {
                images = try images.contiguous(.channelsLast)
            }
        }
        return device == .cpu ? images : try images.to(device: device, nonBlocking: false)
    }

    /// Copies the batch's dataset indices into an int64 tensor [B] on `device`.
    public func indexTensor(device: Device) throws -> Tensor {
        let indices = try Tensor(indices.map(Int64.init))
        return device == .cpu ? indices : try indices.to(device: device)
    }
}
