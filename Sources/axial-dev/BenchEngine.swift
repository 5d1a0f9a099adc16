import AxialTestSupport
import AxialPipeline
import AxialModels
import AxialNN
import AxialTensor
import Foundation

// Engine workloads of `axial bench`: raw GEMM and a ViT-S/16 training step (peers: torch.mm and
// timm's vit_small_patch16_224 in Tools/bench/peers_torch.py).

extension Bench {
    /// BLAS threading for a run: `split` (OpenBLAS on 1 thread, rows split over our workers) or
    /// `openblas` (one call, OpenBLAS's own threads). Taken from an argument or `AXIAL_BLAS`.
    static func configureBLAS(_ mode: String?) -> String {
        let m = mode ?? ProcessInfo.processInfo.environment["AXIAL_BLAS"] ?? "split"
        if m == "openblas" {
            BLAS.partitionRows = false
            BLAS.setOpenBLASThreads(Parallel.workerCount)
        } else {
            BLAS.partitionRows = true
            BLAS.setOpenBLASThreads(1)
        }
        return m
    }

    static func gemm(name: String, m: Int, k: Int, n: Int) -> BenchWorkload {
        BenchWorkload(name: name, summary: "sgemm \(m)×\(k)·\(k)×\(n) through BLAS.sgemm") { args in
            let mode = configureBLAS(args.first)
            var g = RandomGenerator(seed: 1)
            let a = Tensor.uniform([m, k], generator: &g), b = Tensor.uniform([k, n], generator: &g)
            let c = Tensor(zeros: [m, n])
            let gflop = 2.0 * Double(m) * Double(k) * Double(n) / 1e9
            let body: @Sendable () throws -> Void = {
                a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
                    BLAS.sgemm(transA: false, transB: false, m: m, n: n, k: k, a: ap.baseAddress!, lda: k,
                               b: bp.baseAddress!, ldb: n, c: c.storage.pointer, ldc: n)
                } }
                // Consume the result so nothing is hoisted.
                precondition(c.storage.pointer[m * n - 1].isFinite)
            }
            return (body, "mode \(mode); \(String(format: "%.1f", gflop)) GFLOP per call; threshold \(BLAS.partitionThreshold)")
        }
    }

    static let gemm4096 = gemm(name: "gemm-4096", m: 4096, k: 4096, n: 4096)
    static let gemm6304 = gemm(name: "gemm-6304", m: 6304, k: 768, n: 3072)

    /// `vit-s16-train-b64 [batch]`: ViT-S/16 (`VisionTransformer(.vitSmall)` = timm
    /// vit_small_patch16_224, no head; the class-token feature) forward +
    /// backward of mean(features²) + AdamW step, batch 64 at 224.
    static let vitSmallTrain = BenchWorkload(name: "vit-s16-train-b64",
                                             summary: "ViT-S/16 forward + backward + AdamW, batch 64 at 224") { args in
        _ = configureBLAS(nil)
        let batch = args.first.flatMap { Int($0) } ?? 64
        var g = RandomGenerator(seed: 0)
        let model = VisionTransformer(.vitSmall, generator: &g)
        model.train()
        let box = TrainBox(model: model, optimizer: AdamW(model.parameters(), lr: 1e-4, weightDecay: 0.05))
        let x = Tensor.normal([batch, 3, 224, 224], generator: &g)
        let body: @Sendable () throws -> Void = {
            let f = box.model.encode(x)
            let loss = (f * f).mean()
            box.optimizer.zeroGrad()
            loss.backward()
            box.optimizer.step()
            precondition(loss.item().isFinite)
        }
        return (body, "batch \(batch); params \(model.parameterCount())")
    }
}

/// The benchmark body runs on one thread at a time.
private struct TrainBox: @unchecked Sendable { let model: VisionTransformer; let optimizer: any Optimizer }
