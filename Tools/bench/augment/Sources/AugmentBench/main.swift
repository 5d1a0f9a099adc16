import AxialImaging
import AxialTensor
import Foundation

// 512×512 gray slices → two 224 MoCo v3 views each (RRC + jitter p0.8 + grayscale p0.2 + blur
// + solarize + flip + normalise), as ViewLoader makes them. Reports images/s (one image = its
// two views) for the augmentation alone on in-memory slices, 1 thread and 2 threads, and for the
// full ViewLoader (PNG decode included) with 2 workers.
let n = 64
var slices = [PlanarImage8]()
var g = RandomGenerator(seed: 1)
for k in 0..<8 {
    var px = [UInt8](repeating: 0, count: 512 * 512)
    for y in 0..<512 { for x in 0..<512 {
        let v = 128 + 90 * sin(Double(x) / 23 + Double(k)) * cos(Double(y) / 31) + Double(g.uniform() * 30)
        px[y * 512 + x] = UInt8(max(0, min(255, v)))
    } }
    slices.append(PlanarImage8(width: 512, height: 512, channels: 1, pixels: px))
}
let frozen = slices
let config = AugmentConfig()
@Sendable func views(_ i: Int, _ step: Int) -> Float {
    let slices = frozen
    var r = AugmentSeed.generator(seed: 0, step: step, index: i)
    let (a, b, _) = MoCoViews.views(slices[i % slices.count], boxes: [], config: config, generator: &r)
    let t1 = Transforms.normalized(a, mean: config.mean, std: config.std), t2 = Transforms.normalized(b, mean: config.mean, std: config.std)
    return t1[1000] + t2[2000]
}
func time(_ label: String, threads: Int) {
    var best = Double.infinity, checksum: Float = 0
    for rep in 0..<3 {
        let t0 = Date()
        if threads == 1 { for i in 0..<n { checksum += views(i, rep) } }
        else {
            let lock = NSLock(); nonisolated(unsafe) var sum: Float = 0
            DispatchQueue.concurrentPerform(iterations: threads) { w in
                var s: Float = 0
                for i in stride(from: w, to: n, by: threads) { s += views(i, rep) }
                lock.lock(); sum += s; lock.unlock()
            }
            checksum += sum
        }
        best = min(best, Date().timeIntervalSince(t0))
    }
    print(String(format: "%@: %.1f images/s (%.1f views/s, %.2f ms/image) [checksum %.3f]", label, Double(n) / best, 2 * Double(n) / best, best / Double(n) * 1000, checksum))
}
time("augment only, 1 thread ", threads: 1)
time("augment only, 2 threads", threads: 2)

// Full loader: PNG decode + views, 2 workers, batch 32.
let dir = FileManager.default.temporaryDirectory.appendingPathComponent("augbench-\(getpid())")
try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
var samples = [ViewSample]()
for (k, s) in slices.enumerated() {
    let url = dir.appendingPathComponent("\(k).png")
    try PNG.write(s.image8, to: url)
    samples.append(ViewSample(path: url.path))
}
let loader = ViewLoader(samples: samples, batchSize: 32, seed: 0, config: config, steps: 9, workers: 2, prefetch: 4)
_ = loader.next()
let t0 = Date(); var c: Float = 0
for _ in 0..<8 { c += loader.next()!.view1.scalars[5] }
let dt = Date().timeIntervalSince(t0)
print(String(format: "ViewLoader (PNG decode + 2 views), 2 workers: %.1f images/s [checksum %.3f]", 8 * 32 / dt, c))
loader.stop()
try? FileManager.default.removeItem(at: dir)
