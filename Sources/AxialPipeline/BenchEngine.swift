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

    /// `vit-s16-train-b64 [batch]`: ViT-S/16 (timm vit_small_patch16_224, no head) forward +
    /// backward of mean(features²) + AdamW step, batch 64 at 224.
    static let vitSmallTrain = BenchWorkload(name: "vit-s16-train-b64",
                                             summary: "ViT-S/16 forward + backward + AdamW, batch 64 at 224") { args in
        _ = configureBLAS(nil)
        let batch = args.first.flatMap { Int($0) } ?? 64
        var g = RandomGenerator(seed: 0)
        let model = BenchViT(dim: 384, depth: 12, heads: 6, generator: &g)
        nonisolated(unsafe) let optimizer = AdamW(model.parameters(), lr: 1e-4, weightDecay: 0.05)  // used by the one timing thread
        let x = Tensor.normal([batch, 3, 224, 224], generator: &g)
        let body: @Sendable () throws -> Void = {
            let f = model(x)
            let loss = (f * f).mean()
            optimizer.zeroGrad()
            loss.backward()
            optimizer.step()
            precondition(loss.item().isFinite)
        }
        return (body, "batch \(batch); params \(model.parameterCount())")
    }
}

/// timm vit_small_patch16_224 (class token, learned positions, pre-norm blocks, final norm, class
/// token pooled, no head), built from AxialNN layers for the training benchmark.
final class BenchViT: Module, @unchecked Sendable {
    final class Block: Module {
        let norm1: LayerNorm, qkv: Linear, proj: Linear, norm2: LayerNorm, fc1: Linear, fc2: Linear
        let heads: Int
        init(dim: Int, heads: Int, generator g: inout RandomGenerator) {
            norm1 = LayerNorm(dim, eps: 1e-6); qkv = Linear(dim, 3 * dim, generator: &g); proj = Linear(dim, dim, generator: &g)
            norm2 = LayerNorm(dim, eps: 1e-6); fc1 = Linear(dim, 4 * dim, generator: &g); fc2 = Linear(4 * dim, dim, generator: &g)
            self.heads = heads
            super.init()
        }
        func callAsFunction(_ x: Tensor) -> Tensor {
            let (b, n, d) = (x.shape[0], x.shape[1], x.shape[2])
            let hd = d / heads
            let packed = qkv(norm1(x)).reshaped([b, n, 3, heads, hd]).permuted([2, 0, 3, 1, 4])
            let y = scaledDotProductAttention(packed.select(axis: 0, index: 0), packed.select(axis: 0, index: 1),
                                              packed.select(axis: 0, index: 2))
            let h = x + proj(y.permuted([0, 2, 1, 3]).reshaped([b, n, d]))
            return h + fc2(gelu(fc1(norm2(h))))
        }
    }
    let patchWeight: Parameter, patchBias: Parameter, clsToken: Parameter, posEmbed: Parameter
    let blocks: [Block]
    let norm: LayerNorm
    let dim: Int

    init(dim: Int, depth: Int, heads: Int, generator g: inout RandomGenerator) {
        self.dim = dim
        patchWeight = Parameter(Initializer.kaimingUniform([dim, 3 * 16 * 16], generator: &g))
        patchBias = Parameter(Initializer.uniform([dim], bound: 1 / Float(768).squareRoot(), generator: &g))
        clsToken = Parameter(Initializer.truncatedNormal([1, 1, dim], std: 1e-6, generator: &g))
        posEmbed = Parameter(Initializer.truncatedNormal([1, 197, dim], std: 0.02, generator: &g))
        var bs: [Block] = []
        for _ in 0..<depth { bs.append(Block(dim: dim, heads: heads, generator: &g)) }
        blocks = bs
        norm = LayerNorm(dim, eps: 1e-6)
        super.init()
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let b = x.shape[0], gh = x.shape[2] / 16, gw = x.shape[3] / 16
        let patches = x.reshaped([b, 3, gh, 16, gw, 16]).permuted([0, 2, 4, 1, 3, 5]).reshaped([b * gh * gw, 768])
        let tokens = linear(patches, weight: patchWeight.value, bias: patchBias.value).reshaped([b, gh * gw, dim])
        var h = concat([clsToken.value.expand(to: [b, 1, dim]), tokens], axis: 1) + posEmbed.value
        for blk in blocks { h = blk(h) }
        return norm(h).select(axis: 1, index: 0)
    }
}
