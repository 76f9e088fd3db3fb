import Testing
@testable import NPID

@Suite struct ImageGridTests {
    func pixel(_ image: RGBImage, _ x: Int, _ y: Int) -> [UInt8] {
        let index = (y * image.width + x) * 3
        return Array(image.pixels[index..<index + 3])
    }

    func solid(width: Int, height: Int, _ color: [UInt8]) -> RGBImage {
        RGBImage(width: width, height: height, pixels: Array([[UInt8]](repeating: color, count: width * height).joined()))
    }

    @Test func canvasSizeArithmetic() {
        let grid = ImageGrid(tileSize: 64, padding: 4)
        #expect(grid.canvasSize(rowCount: 2, columnCount: 3) == (208, 140))

        let gapped = ImageGrid(tileSize: 32, padding: 2, queryGap: 6)
        #expect(gapped.canvasSize(rowCount: 1, columnCount: 5) == (2 + 5 * 34 + 6, 36))
        #expect(gapped.canvasSize(rowCount: 1, columnCount: 1) == (36, 36))
        #expect(gapped.canvasSize(rowCount: 0, columnCount: 0) == (2, 2))
        #expect(ImageGrid(tileSize: 8, padding: 0).canvasSize(rowCount: 0, columnCount: 0) == (1, 1))
    }

    @Test func renderUsesLongestRowForWidth() {
        let grid = ImageGrid(tileSize: 4, padding: 1, background: (9, 8, 7))
        let tile = GridTile(image: solid(width: 4, height: 4, [100, 110, 120]))

        let canvas = grid.render(rows: [[tile], [tile, tile, tile], []])

        #expect(canvas.width == 1 + 3 * 5)
        #expect(canvas.height == 1 + 3 * 5)
        // Row 0 has one tile, so its second and third cells stay background.
        #expect(pixel(canvas, 7, 2) == [9, 8, 7])
        #expect(pixel(canvas, 12, 2) == [9, 8, 7])
        #expect(pixel(canvas, 12, 7) == [100, 110, 120])
        // Row 2 is empty.
        #expect(pixel(canvas, 2, 12) == [9, 8, 7])
    }

    @Test func tilePixelsLandAtComputedOffset() {
        var image = RGBImage(width: 8, height: 8)
        for index in image.pixels.indices {
            image.pixels[index] = UInt8(index % 251)
        }
        let grid = ImageGrid(tileSize: 8, padding: 3, queryGap: 5)
        let filler = GridTile(image: solid(width: 8, height: 8, [0, 0, 0]))

        let canvas = grid.render(rows: [[filler], [filler, filler, GridTile(image: image)]])

        let origin = grid.tileOrigin(row: 1, column: 2)
        #expect(origin == (3 + 2 * 11 + 5, 3 + 11))
        for y in 0..<8 {
            for x in 0..<8 {
                #expect(pixel(canvas, origin.x + x, origin.y + y) == pixel(image, x, y), "tile pixel (\(x), \(y))")
            }
        }
        // The pixels just outside the tile are background (white by default).
        #expect(pixel(canvas, origin.x - 1, origin.y) == [255, 255, 255])
        #expect(pixel(canvas, origin.x + 8, origin.y + 7) == [255, 255, 255])
        #expect(pixel(canvas, origin.x, origin.y + 8) == [255, 255, 255])
    }

    @Test func queryGapSeparatesFirstColumn() {
        let grid = ImageGrid(tileSize: 2, padding: 1, background: (0, 0, 0), queryGap: 3)
        let tile = GridTile(image: solid(width: 2, height: 2, [50, 50, 50]))

        let canvas = grid.render(rows: [[tile, tile]])

        #expect(canvas.width == 1 + 2 * 3 + 3)
        let row = (0..<canvas.width).map { pixel(canvas, $0, 1)[0] }
        #expect(row == [0, 50, 50, 0, 0, 0, 0, 50, 50, 0])
    }

    @Test func nearestNeighbourDoublesSmallImage() {
        let image = RGBImage(width: 2, height: 2, pixels: [
            10, 11, 12, 20, 21, 22,
            30, 31, 32, 40, 41, 42,
        ])

        let scaled = ImageGrid.resize(image, width: 4, height: 4)

        let a: [UInt8] = [10, 11, 12], b: [UInt8] = [20, 21, 22], c: [UInt8] = [30, 31, 32], d: [UInt8] = [40, 41, 42]
        let expected = [a, a, b, b, a, a, b, b, c, c, d, d, c, c, d, d].flatMap { $0 }
        #expect(scaled.pixels == expected)
    }

    @Test func nearestNeighbourUpscalesCifarSize() {
        var image = RGBImage(width: 32, height: 32)
        for index in image.pixels.indices {
            image.pixels[index] = UInt8(index % 256)
        }

        let scaled = ImageGrid.resize(image, width: 64, height: 64)

        for y in 0..<64 {
            for x in 0..<64 {
                #expect(pixel(scaled, x, y) == pixel(image, x / 2, y / 2))
            }
        }
    }

    @Test func areaAverageShrinks() {
        let image = RGBImage(width: 4, height: 2, pixels: [
            0, 0, 0, 100, 100, 100, 10, 20, 30, 10, 20, 30,
            200, 200, 200, 101, 101, 101, 10, 20, 30, 10, 20, 31,
        ])

        let halved = ImageGrid.resize(image, width: 2, height: 1)

        // (0 + 100 + 200 + 101) / 4 = 100.25, and the right block averages (30 + 30 + 30 + 31) / 4 = 30.25.
        #expect(halved.pixels == [100, 100, 100, 10, 20, 30])
    }

    @Test func areaAverageWeightsPartialOverlap() {
        let image = RGBImage(width: 3, height: 1, pixels: [0, 0, 0, 90, 90, 90, 180, 180, 180])

        let scaled = ImageGrid.resize(image, width: 2, height: 1)

        // Output pixel 0 covers source pixels 0 and half of 1: (0·2 + 90·1) / 3 = 30.
        // Output pixel 1 covers the other half of 1 and pixel 2: (90·1 + 180·2) / 3 = 150.
        #expect(scaled.pixels == [30, 30, 30, 150, 150, 150])
    }

    @Test func mixedAxesScaleIndependently() {
        let image = RGBImage(width: 2, height: 1, pixels: [0, 0, 0, 200, 200, 200])

        let scaled = ImageGrid.resize(image, width: 1, height: 2)

        #expect(scaled.pixels == [100, 100, 100, 100, 100, 100])
    }

    @Test func borderFillsPaddingAroundTile() {
        let grid = ImageGrid(tileSize: 6, padding: 4)
        let tile = GridTile(image: solid(width: 6, height: 6, [1, 2, 3]), border: .match)

        let canvas = grid.render(rows: [[tile]])

        let green = [GridBorder.match.rgb.red, GridBorder.match.rgb.green, GridBorder.match.rgb.blue]
        let white: [UInt8] = [255, 255, 255]
        // The tile spans 4..<10 and the frame spans 2..<4 and 10..<12 on each axis.
        for (x, y) in [(2, 2), (3, 7), (11, 11), (7, 2), (7, 3), (10, 5), (11, 5), (5, 10), (5, 11)] {
            #expect(pixel(canvas, x, y) == green, "frame pixel (\(x), \(y))")
        }
        for (x, y) in [(1, 1), (0, 7), (12, 12), (7, 1), (1, 7)] {
            #expect(pixel(canvas, x, y) == white, "background pixel (\(x), \(y))")
        }
        for (x, y) in [(4, 4), (9, 9), (4, 9), (6, 6)] {
            #expect(pixel(canvas, x, y) == [1, 2, 3], "tile pixel (\(x), \(y))")
        }
    }

    @Test func bordersOfNeighboursDoNotOverlap() {
        let grid = ImageGrid(tileSize: 4, padding: 4)
        let query = GridTile(image: solid(width: 4, height: 4, [0, 0, 0]), border: .query)
        let miss = GridTile(image: solid(width: 4, height: 4, [0, 0, 0]), border: .mismatch)

        let canvas = grid.render(rows: [[query, miss]])

        let blue = [GridBorder.query.rgb.red, GridBorder.query.rgb.green, GridBorder.query.rgb.blue]
        let red = [GridBorder.mismatch.rgb.red, GridBorder.mismatch.rgb.green, GridBorder.mismatch.rgb.blue]
        // Tiles span x 4..<8 and 12..<16, so each frame takes two of the four gap columns 8..<12.
        #expect(pixel(canvas, 8, 5) == blue)
        #expect(pixel(canvas, 9, 5) == blue)
        #expect(pixel(canvas, 10, 5) == red)
        #expect(pixel(canvas, 11, 5) == red)
    }

    @Test func borderWithoutPaddingCoversTileEdge() {
        let grid = ImageGrid(tileSize: 6, padding: 0)
        let tile = GridTile(image: solid(width: 6, height: 6, [1, 2, 3]), border: .color(red: 9, green: 9, blue: 9))

        let canvas = grid.render(rows: [[tile]])

        #expect(canvas.width == 6)
        #expect(pixel(canvas, 0, 0) == [9, 9, 9])
        #expect(pixel(canvas, 1, 3) == [9, 9, 9])
        #expect(pixel(canvas, 4, 3) == [9, 9, 9])
        #expect(pixel(canvas, 2, 2) == [1, 2, 3])
        #expect(pixel(canvas, 3, 3) == [1, 2, 3])
    }
}
