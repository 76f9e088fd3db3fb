import Torch

/// The network output that feature extraction reads.
public enum FeatureLayer: String, Sendable, CaseIterable {
    /// The D-dimensional, L2-normalised feature that the memory bank and kNN use.
    case embedding
    /// The backbone's average-pooled output before the projection (C = 8 × width for
    /// ResNet-18), the usual input of a linear probe.
    case pooled
}

/// Features [N, D] of every image a loader yields, rows in dataset order, computed in
/// evaluation mode (batch-norm running statistics) without gradients.
///
/// Rows are placed by each batch's dataset indices, so the result is in dataset order
/// whatever order the loader yields. With `layer: .pooled` the rows are [N, C] instead.
/// With `precision: .bfloat16` the network runs under bfloat16 autocast, as in training,
/// and the rows are float32 (embeddings renormalised to unit length in float32).
/// With `indices`, only those images are read and the other rows stay zero.
public func extractFeatures(model: ResNet, loader: BatchLoader, count: Int, device: Device,
                            channelsLast: Bool, layer: FeatureLayer = .embedding,
                            precision: Precision = .float32, indices: [Int]? = nil) throws -> Tensor {
    let width = layer == .embedding ? model.configuration.featureDimension : model.pooledDimension
    let features = try Tensor.zeros([count, width], device: device)
    func forward(_ images: Tensor) throws -> Tensor {
        layer == .embedding ? try model(images, training: false) : try model.pooledFeatures(images, training: false)
    }
    try withNoGrad {
        let batches = indices.map { loader.epoch(0, order: $0) } ?? loader.epoch(0)
        while let batch = try batches.nextBatch() {
            let images = try batch.imageTensor(device: device, channelsLast: channelsLast)
            var output: Tensor
            if precision == .bfloat16 {
                output = try withAutocast(device: device, dtype: .bfloat16) { try forward(images) }.to(dtype: .float32)
                if layer == .embedding {
                    output = try output.l2Normalized(dim: 1)
                }
            } else {
                output = try forward(images)
            }
            try checkUsable(output, layer: layer)
            let rows = try Tensor(batch.indices.map(Int64.init)).to(device: device)
            try features.indexCopy(dim: 0, index: rows, source: output)
        }
    }
    return features
}

/// Features that no evaluation can use: NaN or infinite values, or embeddings of zero length.
/// A network gives them when its weights or batch-norm statistics have overflowed, as after
/// training with a learning rate far too high, even while its training loss stayed finite.
public struct UnusableFeaturesError: Error, CustomStringConvertible {
    /// The network, as the message names it: "checkpoint runs/c10/checkpoint.safetensors".
    public var source = "the network"
    /// The advice that ends the message.
    public var advice = "train again with a lower --lr"

    public var description: String {
        "\(source) gives NaN, infinite or zero-length features in evaluation mode, so its weights or batch-norm statistics have overflowed (as with a learning rate far too high); \(advice)"
    }
}

/// Throws `UnusableFeaturesError` unless every row of `output` is finite and, for
/// embeddings, of unit length. An embedding whose norm overflowed comes out as zeros.
func checkUsable(_ output: Tensor, layer: FeatureLayer) throws {
    guard try output.allFinite() else {
        throw UnusableFeaturesError()
    }
    if layer == .embedding {
        let norms = try output.norm(dims: [1])
        let shortfall = try norms.clamp(min: 0.5) - norms
        guard try shortfall.sum().item() == 0 else {
            throw UnusableFeaturesError()
        }
    }
}

/// Features of every image of `store` with the plain transform (no augmentation), rows in
/// dataset order: [N, D], or [N, C] with `layer: .pooled`.
public func plainFeatures(model: ResNet, store: ImageStore, imageSize: Int, runtime: RuntimeOptions,
                          layer: FeatureLayer = .embedding) throws -> Tensor {
    // The plain transform draws no random numbers, so the loader's seed is irrelevant.
    let loader = BatchLoader(store: store, transform: .plain(PlainTransform(outputSize: imageSize)),
                             batchSize: 256, shuffle: false, seed: 0, workers: runtime.workers,
                             layout: runtime.channelsLast ? .nhwc : .nchw)
    return try extractFeatures(model: model, loader: loader, count: store.count, device: runtime.device,
                               channelsLast: runtime.channelsLast, layer: layer,
                               precision: runtime.effectivePrecision)
}
