/// A coloured frame around a grid tile. For nearest-neighbour pictures, `.query` marks the
/// query image, and `.match` and `.mismatch` mark neighbours whose label equals or differs
/// from the query's.
public enum GridBorder: Sendable, Equatable {
    case query
    case match
    case mismatch
    case color(red: UInt8, green: UInt8, blue: UInt8)

    /// The frame colour as (red, green, blue).
    public var rgb: (red: UInt8, green: UInt8, blue: UInt8) {
        switch self {
        case .query: return (30, 90, 230)
        case .match: return (20, 170, 60)
        case .mismatch: return (220, 30, 30)
        case .color(let red, let green, let blue): return (red, green, blue)
        }
    }
}

/// One cell of an `ImageGrid`: an image of any size and an optional frame.
public struct GridTile: Sendable, Equatable {
    public var image: RGBImage
    public var border: GridBorder?

    public init(image: RGBImage, border: GridBorder? = nil) {
        self.image = image
        self.border = border
    }
}

/// Lays out images as rows of equal square tiles on one canvas, for example a query image
/// followed by its nearest neighbours in each row.
///
/// Layout: `padding` pixels of background surround every tile, and `queryGap` extra pixels
/// follow the first column. Tile `column` of row `row` starts at
/// x = padding + column · (tileSize + padding) + (column ≥ 1 ? queryGap : 0) and
/// y = padding + row · (tileSize + padding).
public struct ImageGrid: Sendable {
    /// Width and height of every tile in pixels.
    public var tileSize: Int
    /// Background pixels between tiles and around the canvas edge.
    public var padding: Int
    public var background: (red: UInt8, green: UInt8, blue: UInt8)
    /// Extra background pixels after the first column, which separate queries from neighbours.
    public var queryGap: Int
    /// Thickness of a tile's frame in pixels.
    public var borderWidth: Int

    public init(tileSize: Int = 64, padding: Int = 4, background: (red: UInt8, green: UInt8, blue: UInt8) = (255, 255, 255),
                queryGap: Int = 0, borderWidth: Int = 2) {
        precondition(tileSize > 0, "ImageGrid tileSize must be positive, got \(tileSize)")
        precondition(padding >= 0 && queryGap >= 0 && borderWidth >= 0,
                     "ImageGrid padding, queryGap and borderWidth must not be negative")
        self.tileSize = tileSize
        self.padding = padding
        self.background = background
        self.queryGap = queryGap
        self.borderWidth = borderWidth
    }

    /// Returns the canvas size for `rowCount` rows whose longest row has `columnCount` tiles.
    /// The canvas is at least 1×1 so that an empty grid is still a valid image.
    public func canvasSize(rowCount: Int, columnCount: Int) -> (width: Int, height: Int) {
        let gap = columnCount > 1 ? queryGap : 0
        let width = padding + columnCount * (tileSize + padding) + gap
        let height = padding + rowCount * (tileSize + padding)
        return (max(width, 1), max(height, 1))
    }

    /// Returns the top-left pixel of a tile on the canvas.
    public func tileOrigin(row: Int, column: Int) -> (x: Int, y: Int) {
        let x = padding + column * (tileSize + padding) + (column >= 1 ? queryGap : 0)
        let y = padding + row * (tileSize + padding)
        return (x, y)
    }

    /// Draws the rows onto a background canvas as wide as the longest row. Each image is
    /// scaled to tileSize×tileSize (see `ImageGrid.resize`).
    ///
    /// A frame is `borderWidth` pixels thick and sits in the padding around its tile, up to
    /// half the padding so that frames of neighbouring tiles never overlap. Whatever does not
    /// fit there covers the tile's outer pixels instead, so a frame stays visible with
    /// padding 0.
    public func render(rows: [[GridTile]]) -> RGBImage {
        let columnCount = rows.map(\.count).max() ?? 0
        let size = canvasSize(rowCount: rows.count, columnCount: columnCount)
        var canvas = RGBImage(width: size.width, height: size.height)
        fill(&canvas, x: 0, y: 0, width: size.width, height: size.height, color: background)

        for (rowIndex, row) in rows.enumerated() {
            for (columnIndex, tile) in row.enumerated() {
                let origin = tileOrigin(row: rowIndex, column: columnIndex)
                let scaled = Self.resize(tile.image, width: tileSize, height: tileSize)
                paste(scaled, into: &canvas, x: origin.x, y: origin.y)
                if let border = tile.border {
                    drawFrame(on: &canvas, x: origin.x, y: origin.y, color: border.rgb)
                }
            }
        }
        return canvas
    }

    private func drawFrame(on canvas: inout RGBImage, x: Int, y: Int, color: (red: UInt8, green: UInt8, blue: UInt8)) {
        let outside = min(borderWidth, padding / 2)
        let inside = borderWidth - outside
        let left = x - outside
        let top = y - outside
        let side = tileSize + 2 * outside
        let thickness = outside + inside

        fill(&canvas, x: left, y: top, width: side, height: thickness, color: color)
        fill(&canvas, x: left, y: top + side - thickness, width: side, height: thickness, color: color)
        fill(&canvas, x: left, y: top, width: thickness, height: side, color: color)
        fill(&canvas, x: left + side - thickness, y: top, width: thickness, height: side, color: color)
    }

    private func paste(_ image: RGBImage, into canvas: inout RGBImage, x: Int, y: Int) {
        let rowBytes = image.width * 3
        for row in 0..<image.height {
            let source = row * rowBytes
            let destination = ((y + row) * canvas.width + x) * 3
            canvas.pixels.replaceSubrange(destination..<destination + rowBytes,
                                          with: image.pixels[source..<source + rowBytes])
        }
    }

    /// Fills a rectangle, clipped to the canvas.
    private func fill(_ canvas: inout RGBImage, x: Int, y: Int, width: Int, height: Int,
                      color: (red: UInt8, green: UInt8, blue: UInt8)) {
        let left = max(x, 0)
        let right = min(x + width, canvas.width)
        let top = max(y, 0)
        let bottom = min(y + height, canvas.height)
        guard left < right, top < bottom else {
            return
        }
        for row in top..<bottom {
            for column in left..<right {
                let index = (row * canvas.width + column) * 3
                canvas.pixels[index] = color.red
                canvas.pixels[index + 1] = color.green
                canvas.pixels[index + 2] = color.blue
            }
        }
    }

    // MARK: Resampling

    /// Scales an image to width×height, treating each axis on its own. An axis that grows uses
    /// nearest neighbour, which keeps small images such as 32×32 CIFAR pictures crisp. An axis
    /// that shrinks averages each output pixel's area, weighting source pixels by their
    /// exact overlap, so detail is not aliased away.
    public static func resize(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        if image.width == width && image.height == height {
            return image
        }
        let columns = axisWeights(source: image.width, destination: width)
        let rows = axisWeights(source: image.height, destination: height)
        let divisor = columns.divisor * rows.divisor

        var output = RGBImage(width: width, height: height)
        for y in 0..<height {
            for x in 0..<width {
                var sums = (0, 0, 0)
                for (sourceY, rowWeight) in rows.taps[y] {
                    for (sourceX, columnWeight) in columns.taps[x] {
                        let weight = rowWeight * columnWeight
                        let index = (sourceY * image.width + sourceX) * 3
                        sums.0 += weight * Int(image.pixels[index])
                        sums.1 += weight * Int(image.pixels[index + 1])
                        sums.2 += weight * Int(image.pixels[index + 2])
                    }
                }
                let index = (y * width + x) * 3
                // Adding half the divisor rounds to the nearest integer.
                output.pixels[index] = UInt8((sums.0 + divisor / 2) / divisor)
                output.pixels[index + 1] = UInt8((sums.1 + divisor / 2) / divisor)
                output.pixels[index + 2] = UInt8((sums.2 + divisor / 2) / divisor)
            }
        }
        return output
    }

    /// Integer resampling weights for one axis. Each output pixel lists (source index, weight)
    /// pairs whose weights sum to `divisor`.
    private static func axisWeights(source: Int, destination: Int) -> (taps: [[(Int, Int)]], divisor: Int) {
        if destination >= source {
            // Nearest neighbour: output pixel i samples the source at its centre, (i + 0.5) · source / destination.
            let taps = (0..<destination).map { index in
                [((2 * index + 1) * source / (2 * destination), 1)]
            }
            return (taps, 1)
        }

        // Area average, measured in units that split each source pixel into `destination` parts.
        // Output pixel i covers [i · source, (i + 1) · source) and source pixel j covers
        // [j · destination, (j + 1) · destination), so every overlap is an integer.
        let taps = (0..<destination).map { index in
            let start = index * source
            let end = start + source
            var pairs: [(Int, Int)] = []
            for sourceIndex in (start / destination)...((end - 1) / destination) {
                let overlap = min(end, (sourceIndex + 1) * destination) - max(start, sourceIndex * destination)
                if overlap > 0 {
                    pairs.append((sourceIndex, overlap))
                }
            }
            return pairs
        }
        return (taps, source)
    }
}
