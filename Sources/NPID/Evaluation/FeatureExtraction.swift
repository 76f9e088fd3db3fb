import Torch

/// Features [N, D] of every image a loader yields, rows in dataset order, computed in
/// evaluation mode (batch-norm running statistics) without gradients.
///
/// Rows are placed by each batch's dataset indices, so the result is in dataset order
/// whatever order the loader yields.
public func extractFeatures(model: ResNet, loader: BatchLoader, count: Int, device: Device,
                            channelsLast: Bool) throws -> Tensor {
    let features = try Tensor.zeros([count, model.configuration.featureDimension], device: device)
    try withNoGrad {
        let batches = loader.epoch(0)
        while let batch = try batches.nextBatch() {
            let images = try batch.imageTensor(device: device, channelsLast: channelsLast)
            let output = try model(images, training: false)
            let rows = try Tensor(batch.indices.map(Int64.init)).to(device: device)
            try features.indexCopy(dim: 0, index: rows, source: output)
        }
    }
    return features
}
