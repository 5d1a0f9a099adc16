import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialImaging

@Suite struct LesionTableTests {
    func write(_ text: String, _ name: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("axial-lesions-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    @Test func deepLesionInfo() throws {
        let url = try write("""
        File_name,Patient_index,Study_index,Series_ID,Key_slice_index,Measurement_coordinates,Bounding_boxes,Image_size,Train_Val_Test
        000001_01_01_109.png,1,1,1,109,"233.5, 95.1, 234.9, 55.4","226.17, 90.9, 271.2, 131.5","512, 512",3
        000001_01_01_109.png,1,1,1,109,"1, 2, 3, 4","10, 20, 30, 40","512, 512",3
        000002_02_01_077.png,2,2,1,77,"1, 2, 3, 4","100.0, 50.0, 110.0, 60.0","256, 256",1

        """, "DL_info.csv")
        let t = try LesionTable.read(url)
        #expect(t.count == 3)
        #expect(t.boxes(forPath: "/data/DeepLesion/000001_01_01/109.png").count == 2)
        #expect(t.boxes(forPath: "/elsewhere/unknown/1.png").isEmpty)   // unknown paths: no crash, no boxes
        let b = try #require(t.boxes(patientID: "000002", sliceIndex: 77, seriesUID: "02_01").first)
        #expect(b == LesionBox(x1: 100, y1: 50, x2: 110, y2: 60, referenceWidth: 256, referenceHeight: 256))
        #expect(b.scaled(toWidth: 512, height: 128) == LesionBox(x1: 200, y1: 25, x2: 220, y2: 30, referenceWidth: 512, referenceHeight: 128))
    }

    @Test func axialCSVAndErrors() throws {
        let ok = try write("patient_id,slice_index,x1,y1,x2,y2,series_uid\nP1,3,1,2,5,6,\nP1,4,1,2,5,6,1.2.3\n", "lesions.csv")
        let t = try LesionTable.read(ok)
        #expect(t.boxes(patientID: "P1", sliceIndex: 3).count == 1)
        #expect(t.boxes(patientID: "P1", sliceIndex: 4).isEmpty)
        #expect(t.boxes(patientID: "P1", sliceIndex: 4, seriesUID: "1.2.3").count == 1)
        #expect(t.boxes(patientID: "P1", sliceIndex: 3, seriesUID: "9.9").count == 1)   // no series: any series

        let bad = try write("patient_id,slice_index,x1,y1,x2,y2\nP1,3,1,2,5,6\nP1,x,1,2,5,6\n", "bad.csv")
        #expect { try LesionTable.read(bad) } throws: { "\($0)".contains("bad.csv:3:") && "\($0)".contains("slice_index") }
        let inverted = try write("patient_id,slice_index,x1,y1,x2,y2\nP1,3,9,2,5,6\n", "inv.csv")
        #expect { try LesionTable.read(inverted) } throws: { "\($0)".contains("inv.csv:2:") }
        let dl = try write("File_name,Bounding_boxes\n000001_01_01_109.png,\"1, 2, 3\"\n", "dl.csv")
        #expect { try LesionTable.read(dl) } throws: { "\($0)".contains("dl.csv:2:") && "\($0)".contains("Bounding_boxes") }
        let other = try write("a,b\n1,2\n", "other.csv")
        #expect { try LesionTable.read(other) } throws: { "\($0)".contains("missing column") }
    }
}

@Suite struct AugmentSamplingTests {
    @Test func randomResizedCropBoxesFollowTorchvisionRanges() {
        var g = RandomGenerator(seed: 7)
        var areas = [Double]()
        for _ in 0..<2000 {
            let b = Augment.randomResizedCropBox(width: 512, height: 384, generator: &g)
            #expect(b.isInside(width: 512, height: 384))
            let r = Double(b.width) / Double(b.height)
            areas.append(Double(b.width * b.height) / Double(512 * 384))
            #expect(r > 0.74 && r < 1.35 || b == CropBox(x: 0, y: 0, width: 512, height: 384))
        }
        #expect(areas.min()! > 0.075 && areas.max()! <= 1.0)
        let mean = areas.reduce(0, +) / Double(areas.count)
        // torchvision get_params on 512×384: mean area fraction 0.4348 (20000 draws; large
        // off-aspect areas are rejected and redrawn, so below U(0.08, 1)'s 0.54).
        #expect(abs(mean - 0.4348) < 0.02)
        // A very wide image falls back to the central crop clamped to ratio 4/3.
        var h = RandomGenerator(seed: 1)
        #expect(Augment.randomResizedCropBox(width: 400, height: 10, scale: (0.99, 1), generator: &h) == CropBox(x: 193, y: 0, width: 13, height: 10))
    }

    @Test func lesionCropCentredAtCorner() {
        var g = RandomGenerator(seed: 3)
        let box = LesionBox(x1: 100, y1: 200, x2: 140, y2: 260)
        for _ in 0..<500 {
            let c = MoCoViews.lesionCropBox(width: 512, height: 512, box: box, cropMin: 0.08, generator: &g)
            #expect(c.width >= 144 && c.width < 512 && c.height >= 144 && c.height < 512)
            #expect(c.x + c.width / 2 == 100 && c.y + c.height / 2 == 260)
        }
    }

    @Test func viewsAreReproducibleAndLesionAware() {
        var pixels = [UInt8](repeating: 0, count: 64 * 48)
        for i in pixels.indices { pixels[i] = UInt8((i * 37) % 251) }
        let image = PlanarImage8(width: 64, height: 48, channels: 1, pixels: pixels)
        var config = AugmentConfig()
        config.size = 32
        var g1 = AugmentSeed.generator(seed: 5, step: 9, index: 2), g2 = AugmentSeed.generator(seed: 5, step: 9, index: 2)
        let a = MoCoViews.views(image, boxes: [], config: config, generator: &g1)
        let b = MoCoViews.views(image, boxes: [], config: config, generator: &g2)
        #expect(a.0 == b.0 && a.1 == b.1 && !a.isLesion)
        var g3 = AugmentSeed.generator(seed: 5, step: 9, index: 3)
        #expect(MoCoViews.views(image, boxes: [], config: config, generator: &g3).0 != a.0)
        var g4 = AugmentSeed.generator(seed: 5, step: 9, index: 2)
        let l = MoCoViews.views(image, boxes: [LesionBox(x1: 10, y1: 10, x2: 20, y2: 20)], config: config, generator: &g4)
        #expect(l.isLesion && l.0.width == 32 && l.1.height == 32)
    }
}

@Suite struct ViewLoaderTests {
    static func makeImages(_ n: Int) throws -> [String] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("axial-views-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return try (0..<n).map { k in
            var px = [UInt8](repeating: 0, count: 40 * 30)
            for i in px.indices { px[i] = UInt8((i * (k + 3)) % 256) }
            let url = dir.appendingPathComponent("\(k).png")
            try PNG.write(Image8(width: 40, height: 30, channels: 1, pixels: px), to: url)
            return url.path
        }
    }

    @Test func batchesIndependentOfWorkersAndResumable() throws {
        let paths = try Self.makeImages(5)
        var samples = paths.map { ViewSample(path: $0) }
        samples[2].boxes = [LesionBox(x1: 5, y1: 5, x2: 15, y2: 12)]
        samples.append(ViewSample(path: "/nonexistent/x.png"))
        var config = AugmentConfig()
        config.size = 16
        let one = ViewLoader(samples: samples, batchSize: 4, seed: 11, config: config, steps: 4, workers: 1, prefetch: 1)
        let three = ViewLoader(samples: samples, batchSize: 4, seed: 11, config: config, steps: 4, workers: 3, prefetch: 3)
        var batches = [ViewBatch]()
        while let a = one.next() {
            let b = try #require(three.next())
            #expect(a.step == b.step && a.view1.scalars == b.view1.scalars && a.view2.scalars == b.view2.scalars && a.sampleIndices == b.sampleIndices)
            #expect(a.view1.shape == [4, 3, 16, 16])
            batches.append(a)
        }
        #expect(three.next() == nil && batches.count == 4)
        // Resume at step 2 reproduces steps 2 and 3.
        let resumed = ViewLoader(samples: samples, batchSize: 4, seed: 11, config: config, startStep: 2, steps: 2, workers: 2)
        for k in 2..<4 { #expect(try #require(resumed.next()).view2.scalars == batches[k].view2.scalars) }
        // Lesion rows are flagged; the unreadable path is reported and replaced.
        let all = batches.flatMap { zip($0.sampleIndices, $0.isLesion.scalars).map { ($0, $1) } }
        #expect(all.allSatisfy { ($0.0 == 2) == ($0.1 == 1) })
        #expect(all.allSatisfy { $0.0 != 5 })
        #expect(batches.flatMap(\.failures).allSatisfy { $0.contains("/nonexistent/x.png") })
        #expect(!batches.flatMap(\.failures).isEmpty)
        for l in [one, three, resumed] { l.stop() }
    }

    @Test func extractionLoaderMatchesPreprocess() throws {
        let paths = try Self.makeImages(3) + ["/nonexistent/y.png"]
        let pre = Preprocess(resize: .shorterSide(20), crop: 16, interpolation: .bicubic)
        let loader = ExtractionLoader(paths: paths, preprocess: pre, batchSize: 2)
        let b0 = try #require(loader.next()), b1 = try #require(loader.next())
        #expect(loader.next() == nil)
        #expect(b0.positions == [0, 1] && b1.positions == [2] && b1.failures.count == 1)
        let direct = pre(PlanarImage8(try PNG.read(URL(fileURLWithPath: paths[2]))))
        #expect(b1.images.scalars == direct)
        loader.stop()
    }
}
